"""Every shipped recipe over several seeds: does it learn, how much do seeds move it, how long does it take.

Each recipe runs through the real CLI (``gaitrun run RECIPE --json --set seed=S``) for the seeds
S = recipe seed, recipe seed + 1, ... (so ``--seeds 1`` is the shipped run), one at a time. The
figure read from each run's ``metrics.json`` is the recipe's stated one:

- gait recipes (k-NN): rank-1 per sequence for NM, BG and CL probes (``summary.mean.rank1_<c>``,
  the mean over folds; the per-window figures are printed as ``window NM``);
- classifiers: accuracy per sample (``summary.mean.accuracy``, the mean over folds).

Runs that prune or quantise also give their trade-off rows from ``bench.json``: the pruned and
fine-tuned Keras model's accuracy, the deployed export's accuracy, and the deployed model's
speed-up over the unpruned model exported at the same precision, per batch size (p50 latency).

The table gives mean ± sd over seeds (sample sd), every seed's value, the wall time and the CPU
time (user + system of the run's processes) of each run, and the load average while it ran: wall
times measured on a loaded machine are inflated, CPU seconds much less so. Data generation is
included on the first run of a data set; later runs hit the cache. ``--out`` is rewritten after
every run, so an interrupted bench keeps what it measured.

    python bench/recipes.py [--seeds 3] [--recipe NAME ...] [--artifacts DIR] [--out results.json]

Sweep recipes (a ``search:`` section, e.g. ``recipes/sweep_*.yaml``) are not runs: they are
left out, and naming one is an error (run them with ``gaitrun``; README, "Sweeps").
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
FIGURES = (("rank1_nm", "rank-1 NM"), ("rank1_bg", "rank-1 BG"), ("rank1_cl", "rank-1 CL"),
           ("rank1_window_nm", "window NM"), ("accuracy", "accuracy"),
           ("pruned_accuracy", "pruned accuracy"), ("deployed_accuracy", "deployed accuracy"))


def machine() -> str:
    """CPU model, its VNNI flags (INT8 speed), its bfloat16 flags (``mixed_precision: auto``
    trains in bfloat16 where they are) and the load, for the record."""
    from gaitrun.cpu import cpu_flags, cpu_model

    model, flags = cpu_model(), cpu_flags()
    have = ", ".join(f"{f}={'yes' if f in flags else 'no'}"
                     for f in ("avx512_vnni", "avx_vnni", "amx_bf16", "avx512_bf16"))
    return f"{model} ({os.cpu_count()} cores; {have}); load {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f}"


def run_once(recipe: Path, seed: int, artifacts: Path, overrides: list[str]) -> dict[str, Any]:
    """One CLI run; its wall time, run folder and headline figures (mean over folds)."""
    exe = Path(sys.executable).parent / "gaitrun"
    argv = [str(exe), "run", str(recipe), "--artifacts", str(artifacts), "--json", "--set", f"seed={seed}"]
    for item in overrides:
        argv += ["--set", item]
    start, cpu0, load0 = time.perf_counter(), _children_cpu(), os.getloadavg()[0]
    res = subprocess.run(argv, capture_output=True, text=True)
    wall, cpu = time.perf_counter() - start, _children_cpu() - cpu0
    try:
        payload = json.loads(res.stdout)
    except json.JSONDecodeError:
        payload = {"ok": False, "errors": [res.stderr.strip()[-500:] or f"exit code {res.returncode}"]}
    row: dict[str, Any] = {"recipe": recipe.stem, "seed": seed, "wall_s": round(wall, 1), "cpu_s": round(cpu, 1),
                           "load": [round(load0, 2), round(os.getloadavg()[0], 2)], "ok": bool(payload.get("ok"))}
    if not row["ok"]:
        row["error"] = "; ".join(payload.get("errors") or [str(payload.get("stages"))])
        return row
    folder = Path(payload["run_folder"])
    mean = json.loads((folder / "metrics.json").read_text())["summary"]["mean"]
    figures = {k: mean[k] for k, _ in FIGURES if isinstance(mean.get(k), (int, float))}
    speedup = tradeoff(folder, figures)
    row.update(run_folder=str(folder), figures=figures, **({"speedup": speedup} if speedup else {}))
    return row


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def tradeoff(folder: Path, figures: dict[str, float]) -> dict[str, float]:
    """From ``bench.json``'s trade-off rows: pruned and deployed accuracy (into ``figures``) and
    the deployed model's speed-up over the unpruned model at the same precision, per batch size."""
    path = folder / "bench.json"
    rows = json.loads(path.read_text()).get("rows", []) if path.is_file() else []
    pruned = next((r for r in rows if r.get("name") == "pruned keras"), None)
    deployed = next((r for r in rows if r.get("deployed")), None)
    for key, r in (("pruned_accuracy", pruned), ("deployed_accuracy", deployed)):
        if r is not None and isinstance(r.get("accuracy"), (int, float)):
            figures[key] = r["accuracy"]
    if deployed is None or deployed.get("model") != "pruned":
        return {}
    base = next((r for r in rows if r.get("model") == "unpruned" and r.get("precision") == deployed["precision"]
                 and r.get("backend") == deployed["backend"]), None)
    lat, ref = deployed.get("latency", {}), (base or {}).get("latency", {})
    return {b: round(ref[b]["p50_ms"] / lat[b]["p50_ms"], 2) for b in lat if b in ref}


def summarise(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per recipe and figure: mean, sd and the per-seed values; plus the wall times."""
    out = []
    for name in dict.fromkeys(r["recipe"] for r in rows):
        runs = [r for r in rows if r["recipe"] == name]
        done = [r for r in runs if r["ok"]]
        keys = [k for k, _ in FIGURES if done and all(k in r["figures"] for r in done)]
        for key in keys or [None]:
            values = [r["figures"][key] for r in done] if key else []
            out.append({"recipe": name, "figure": dict(FIGURES).get(key, "failed"), "values": values,
                        "mean": statistics.fmean(values) if values else None,
                        "sd": statistics.stdev(values) if len(values) > 1 else 0.0,
                        "wall_s": [r["wall_s"] for r in runs], "cpu_s": [r["cpu_s"] for r in runs],
                        "load": [r["load"] for r in runs], "failed": [r.get("error") for r in runs if not r["ok"]]})
    return out


def table(summary: list[dict[str, Any]]) -> str:
    lines = ["| recipe | figure | mean ± sd (%) | per seed (%) | wall / CPU s per run | load during run |",
             "|---|---|---|---|---|---|"]
    for s in summary:
        spread = f" ± {100 * s['sd']:.1f}" if len(s["values"]) > 1 else " (one seed)"
        mean = "—" if s["mean"] is None else f"{100 * s['mean']:.1f}{spread}"
        seeds = ", ".join(f"{100 * v:.1f}" for v in s["values"]) or "; ".join(s["failed"])[:120]
        times = ", ".join(f"{w:.0f} / {c:.0f}" for w, c in zip(s["wall_s"], s["cpu_s"], strict=True))
        loads = ", ".join(f"{a:.1f}-{b:.1f}" for a, b in s["load"])
        lines.append(f"| {s['recipe']} | {s['figure']} | {mean} | {seeds} | {times} | {loads} |")
    return "\n".join(lines)


def speedup_table(rows: list[dict[str, Any]]) -> str:
    """Deployed pruned model vs the unpruned one at the same precision, per seed and batch size."""
    lines = [f"| {r['recipe']} | {r['seed']} | " + ", ".join(f"b{b} {v:.2f}x" for b, v in r["speedup"].items()) + " |"
             for r in rows if r.get("speedup")]
    head = ["| recipe | seed | deployed speed-up over unpruned at the same precision (p50) |", "|---|---|---|"]
    return "\n".join(head + lines) if lines else ""


def write_out(path: Path | None, rows: list[dict[str, Any]]) -> None:
    """Every run so far and the summary, as JSON (written atomically)."""
    if path is None:
        return
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps({"machine": machine(), "runs": rows, "summary": summarise(rows)}, indent=2))
    os.replace(tmp, path)


def is_sweep(recipe: Path) -> bool:
    """A recipe with a ``search:`` section: a sweep of many runs, not one run to benchmark."""
    from gaitrun.yamlio import load_file

    return load_file(recipe).data.get("search") is not None


def shipped_runs() -> list[Path]:
    """The shipped recipes that are single runs (sweeps left out)."""
    return [r for r in sorted((REPO / "recipes").glob("*.yaml")) if not is_sweep(r)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=3, help="runs per recipe (default 3)")
    parser.add_argument("--recipe", action="append", default=[], help="recipe name or path (repeatable; default: all)")
    parser.add_argument("--artifacts", type=Path, default=None, help="where the runs go (default: a temporary folder)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], help="extra --set for every run")
    parser.add_argument("--out", type=Path, default=None, help="also write every run and the summary as JSON")
    args = parser.parse_args()
    if args.seeds < 1:
        parser.error("--seeds must be at least 1")
    recipes = [Path(r) if r.endswith(".yaml") else REPO / "recipes" / f"{r}.yaml" for r in args.recipe] \
        or shipped_runs()
    missing = [str(r) for r in recipes if not r.is_file()]
    if missing:
        parser.error(f"no such recipe: {', '.join(missing)}")
    sweeps = [str(r) for r in recipes if is_sweep(r)]
    if sweeps:
        parser.error(f"{', '.join(sweeps)}: a sweep (search:), not a run; run it with 'gaitrun {sweeps[0]}'")
    artifacts = args.artifacts or Path(tempfile.mkdtemp(prefix="bench-recipes-"))
    print(f"machine: {machine()}\nruns in {artifacts}", flush=True)
    rows = []
    for recipe in recipes:
        from gaitrun.yamlio import load_file

        seed = int(load_file(recipe).data.get("seed", 0))
        for s in range(seed, seed + args.seeds):
            rows.append(run_once(recipe, s, artifacts, args.overrides))
            shown = rows[-1].get("figures") or rows[-1].get("error")
            last = rows[-1]
            print(f"{recipe.stem} seed {s}: {last['wall_s']:.0f} s wall, {last['cpu_s']:.0f} s CPU, "
                  f"load {last['load'][0]:.1f}-{last['load'][1]:.1f}: {shown}"
                  + (f" speed-up {last['speedup']}" if last.get("speedup") else ""), flush=True)
            write_out(args.out, rows)
    print(f"\n{table(summarise(rows))}\n\n{speedup_table(rows)}\n\nload at the end: {machine().rsplit('load ', 1)[1]}")
    return 0 if all(r["ok"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
