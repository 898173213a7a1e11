"""The report stage: ``report.md``, a human summary of the run folder: stages, data, the
metric tables (per fold, mean +- std, rank-1 NM/BG/CL and per view), pruning, export parity,
benchmark and the plots."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..atomic import read_json


def _stages(m: dict) -> list[str]:
    lines = ["| stage | status | reason |", "|---|---|---|"]
    for s in m["stages"]:
        status = "done" if s["name"] == "report" else s["status"]  # this very file is the report stage's result
        lines.append(f"| {s['name']} | {status} | {s['reason'] or ''} |")
    return lines + [""]


def _data(path: Path) -> list[str]:
    d = read_json(path)
    return ["## Data", "", f"{d['samples']} samples, {len(d['classes'])} classes, {len(d['subjects'])} subjects; "
            f"input {tuple(d.get('input_shape', []))} ({d.get('layout', '?')}); skipped {d.get('skipped', 0)}.", ""]


def _pruning(path: Path) -> list[str]:
    p = read_json(path)
    t = p["report"]["totals"]
    lines = ["## Pruning", "", f"{p['method']}: {p['summary']} (best fold {p['best_fold']}).", "",
             "| | before | after | ratio |", "|---|---|---|---|"]
    for key in ("filters", "params", "flops"):
        before, after = t[key]["before"], t[key]["after"]
        lines.append(f"| {key} | {before:,} | {after:,} | {before / max(after, 1):.2f}x |")
    lines += ["", "| metric | before | after pruning | after fine-tuning |", "|---|---|---|---|"]
    for name, value in p["before"]["mean"].items():
        lines.append(f"| {name} | {value:.4f} | {p['after_pruning']['mean'].get(name, float('nan')):.4f} | "
                     f"{p['after_finetune']['mean'].get(name, float('nan')):.4f} |")
    return lines + [""]


def _export(path: Path) -> list[str]:
    e = read_json(path)
    lines = ["## Export", "", f"Target {e['target']} {e['precision']}: {e['status']}"
             + (f" ({e['reason']})" if e.get("reason") else "") + "."]
    par = e.get("parity")
    if par:
        lines += ["", f"Parity: {par['metric']} {par['keras']:.4f} (Keras) vs {par['exported']:.4f} (exported); "
                  f"max |diff| {par['max_abs_diff']:.2e}; top-1 agreement {par['top1_agreement']:.3f}; "
                  f"gate max_drop {par['max_drop']} {'passed' if par['passed'] else 'FAILED'}."]
    return lines + [""]


def _bench(path: Path) -> list[str]:
    b = read_json(path)
    cpu = b.get("cpu", {})
    timed = f"{b['iterations']} iterations" + (f" or more, at least {b['min_time_s']:g} s per model and batch size"
                                               if b.get("min_time_s") else "")
    where = (f"{b['threads']} threads, {timed}, after {b['warmup']} warm-up; CPU {cpu.get('model', '?')}"
             f" (avx512_vnni {cpu.get('avx512_vnni', '?')}, avx_vnni {cpu.get('avx_vnni', '?')}).")
    if "rows" in b:
        from ..tradeoff import markdown

        return ["## Trade-off: pruning and precision", "", where, "",
                "Accuracy per sequence on the evaluation set; rank-1 on NM probes per sequence (Keras rows); "
                "speed-up: p50 latency of the unpruned Keras model / this row's.", "", *markdown(b), ""]
    lines = ["## Benchmark", "", where, "",
             "| backend | batch | p50 ms | p95 ms | samples/s |", "|---|---|---|---|---|"]
    lines += [f"| {r['backend']} | {r['batch_size']} | {r['p50_ms']:.2f} | {r['p95_ms']:.2f} | {r['throughput_per_s']:.1f} |"
              for r in b["results"]]
    return lines + [""]


def run(ctx: Any) -> dict:
    from ..evaluate.summary import markdown_tables

    folder = ctx.folder
    m = folder.manifest
    lines = [f"# {m['name']} — run {m['run_id']}", "",
             f"Recipe hash `{m['recipe_hash']}`, seed {m['seed']}, created {m['created']}.", "", *_stages(m)]
    if folder.file("data.json").is_file():
        lines += _data(folder.file("data.json"))
    if folder.file("metrics.json").is_file():
        lines += ["## Metrics", "", markdown_tables(read_json(folder.file("metrics.json"))), ""]
    for rel, section in (("pruned/pruning.json", _pruning), ("export/export.json", _export), ("bench.json", _bench)):
        if folder.file(rel).is_file():
            lines += section(folder.file(rel))
    plots = sorted(folder.file("plots").glob("*.png")) if folder.file("plots").is_dir() else []
    lines += [f"![{p.stem}](plots/{p.name})" for p in plots]
    folder.write_text("report.md", "\n".join(lines) + "\n")
    return {}
