"""The trade-off table (Embedded-Gait's result, made by every run that prunes or quantises):
the unpruned and the pruned model, in Keras and exported at each precision the deploy target
offers, each with its size, its cost and its score on the same evaluation windows.

The export stage calls :func:`export_variants`: besides the deployed artefact it exports the
unpruned model (FP32, and at the deployed precision) and the pruned one at every other
precision of the target into ``export/variants/<model>-<precision>/``, scores every row and
writes ``export/tradeoff.json``. The bench stage times each row (``gaitrun.bench``), so
``bench.json`` holds the whole table; the report prints it and ``plots/tradeoff.png`` plots
accuracy against latency.

Accuracy is per sequence (the mean of the window probabilities of each evaluation sequence,
as ``metrics.json`` reports it); rank-1 (NM probes, per sequence) is given for the Keras rows
of embedding models, whose exported graphs keep only the classifier output.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .atomic import read_json

ORDER = ("fp32", "fp16", "int8")


@dataclass(frozen=True)
class Row:
    """One row of the table before it is timed."""

    name: str  # e.g. "pruned int8 (onnx)"
    model: str  # "unpruned" | "pruned"
    precision: str
    backend: str  # "keras" or the deploy target
    artifact: Path  # absolute
    keras_model: Path  # the Keras model this row comes from (params, FLOPs)
    deployed: bool = False


def plan(*, target: str, precisions: frozenset[str], deployed: str, pruned: bool) -> list[tuple[str, str]]:
    """(model, precision) pairs to export, the deployed one included, in table order."""
    offered = [p for p in ORDER if p in precisions]
    if not pruned:  # quantised only (or neither: then the table is just Keras vs the export)
        return [("unpruned", "fp32")] + ([("unpruned", p) for p in offered if p != "fp32"]
                                         if deployed != "fp32" else [])
    return list(dict.fromkeys([("unpruned", "fp32"), ("unpruned", deployed)] + [("pruned", p) for p in offered]))


def export_variants(ctx: Any, *, unpruned: Path, pruned: Path | None, deployed_artifact: Path | None,
                    context: Any, x: np.ndarray, owners: np.ndarray, loaded: dict[Path, Any] | None = None,
                    scored: dict[Path, np.ndarray] | None = None) -> dict:
    """Export, score and list every row; writes ``export/tradeoff.json`` and returns it.
    ``loaded``: Keras models already in memory, by file; ``scored``: outputs on ``x`` already
    computed, by model file (the parity gate's), so that neither is loaded or run twice."""
    from .keras_io import load_model

    models = dict(loaded or {})

    def model_of(path: Path) -> Any:
        if path not in models:
            models[path] = load_model(path)
        return models[path]

    d = ctx.recipe.deploy
    exporter = ctx.regs["exporters"].get(d.target)
    rows = [Row("unpruned keras", "unpruned", "fp32", "keras", unpruned, unpruned)]
    if pruned is not None:
        rows.append(Row("pruned keras", "pruned", "fp32", "keras", pruned, pruned))
    for model_tag, precision in plan(target=d.target, precisions=frozenset(exporter.declared("PRECISIONS")),
                                     deployed=d.precision, pruned=pruned is not None):
        source = pruned if model_tag == "pruned" else unpruned
        is_deployed = precision == d.precision and (model_tag == "pruned") == (pruned is not None)
        artifact = deployed_artifact if is_deployed else _export(ctx, exporter, model_of(source), context,
                                                                 f"{model_tag}-{precision}", precision)
        if artifact is not None:
            rows.append(Row(f"{model_tag} {precision} ({d.target})", model_tag, precision, d.target,
                            artifact, source, deployed=is_deployed))
    table = {"rows": [_describe(ctx, row, model_of(row.keras_model), x, owners, (scored or {}).get(row.artifact))
                      for row in rows]}
    ctx.folder.write_json("export/tradeoff.json", table)
    return table


def _export(ctx: Any, exporter: Any, model: Any, context: Any, name: str, precision: str) -> Path | None:
    """Export the Keras ``model`` at ``precision`` into ``export/variants/<name>/``; the
    artefact, or ``None`` when the target made nothing runnable here (a deferred engine)."""
    from dataclasses import replace

    from .deploy_data import calibration_for

    out = ctx.folder.file("export", "variants", name)
    variant = replace(context, out_dir=out, precision=precision, calibration=calibration_for(ctx, precision))
    result = exporter.impl("export")(model, params=exporter.own_params(ctx.recipe.deploy), ctx=variant)
    return out / result["model"] if result.get("model") else None


def _describe(ctx: Any, row: Row, model: Any, x: np.ndarray, owners: np.ndarray,
              outputs: np.ndarray | None = None) -> dict:
    """A row's static columns: size, parameters and FLOPs (of ``model``, its Keras model),
    accuracy, rank-1. ``outputs``: the row's outputs on ``x`` if already computed."""
    from .export.files import file_record
    from .export.parity import run_keras, score_backend
    from .prune.flops import count_flops
    from .stages.export import runtime_of

    runtime = runtime_of(ctx.regs["exporters"].get(ctx.recipe.deploy.target))
    if outputs is None:
        outputs = run_keras(model, x) if row.backend == "keras" else score_backend(row.artifact, x, runtime=runtime)
    root = ctx.folder.path
    return {"name": row.name, "model": row.model, "precision": row.precision, "backend": row.backend,
            "deployed": row.deployed, "artifact": _rel(row.artifact, root),
            "bytes": file_record(row.artifact.parent, row.artifact)["bytes"],
            "params": int(model.count_params()), "flops": int(count_flops(model, frames=ctx.recipe.data.clip.frames)),
            "accuracy": sequence_accuracy(outputs, owners, ctx), "rank1_nm": _rank1(ctx, row)}


def sequence_accuracy(outputs: np.ndarray, owners: np.ndarray, ctx: Any) -> float | None:
    """Accuracy per sequence from per-window class probabilities (``None`` for embeddings)."""
    from .stages.data import prepared
    from .train.evaluation import per_sample

    prep = prepared(ctx)
    if outputs.ndim != 2 or outputs.shape[1] != len(prep.class_names):
        return None
    probs, positions = per_sample(outputs, owners)
    return float(np.mean(probs.argmax(-1) == prep.labels[positions]))


def _rank1(ctx: Any, row: Row) -> float | None:
    """Rank-1 on NM probes per sequence, as the train and prune stages recorded it (Keras rows)."""
    from .deploy_data import best_fold, pruned_root, train_root

    if row.backend != "keras":
        return None
    fold = best_fold(ctx).name
    if row.model == "pruned":
        path, key = pruned_root(ctx) / "pruned" / "folds" / fold / "metrics.json", "after_finetune"
        scores = read_json(path).get(key, {}) if path.is_file() else {}
    else:
        folds = read_json(train_root(ctx) / "metrics.json")["folds"]
        from .stages.train import headline

        scores = headline(next(f for f in folds if str(f.get("fold")) == fold))
    value = scores.get("rank1_sequence_nm", scores.get("rank1_nm"))
    return None if value is None else float(value)


def _rel(path: Path, root: Path) -> str:
    return path.relative_to(root).as_posix() if path.is_relative_to(root) else str(path)


def speedups(rows: list[dict], batch_sizes: list[int]) -> None:
    """Add ``speedup`` (per batch size: unpruned Keras p50 / this row's p50) to timed rows."""
    base = next((r for r in rows if r["backend"] == "keras" and r["model"] == "unpruned"), None)
    for row in rows:
        row["speedup_vs_unpruned_keras"] = {
            str(b): (base["latency"][str(b)]["p50_ms"] / row["latency"][str(b)]["p50_ms"])
            if base and row.get("latency", {}).get(str(b)) and base["latency"].get(str(b)) else None
            for b in batch_sizes}


def markdown(bench: dict) -> list[str]:
    """The table as Markdown lines."""
    batches = [str(b) for b in bench["batch_sizes"]]
    head = ["variant", "params", "FLOPs", "size", "accuracy", "rank-1 NM"]
    head += [f"p50 ms b{b}" for b in batches] + [f"samples/s b{b}" for b in batches]
    head += [f"speed-up b{b}" for b in batches]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in bench["rows"]:
        lat = r.get("latency", {})
        cells = [r["name"] + (" **deployed**" if r["deployed"] else ""), f"{r['params']:,}",
                 f"{r['flops'] / 1e6:.1f} M", f"{r['bytes'] / 1e6:.2f} MB", _pct(r["accuracy"]), _pct(r["rank1_nm"])]
        cells += [f"{lat[b]['p50_ms']:.2f}" if lat.get(b) else "-" for b in batches]
        cells += [f"{lat[b]['throughput_per_s']:.0f}" if lat.get(b) else "-" for b in batches]
        cells += [f"{r['speedup_vs_unpruned_keras'][b]:.2f}x" if r.get("speedup_vs_unpruned_keras", {}).get(b)
                  else "-" for b in batches]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f} %"


def plot(bench: dict, out_png: Path) -> None:
    """Accuracy against p50 latency at the smallest batch size, one labelled point per row."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .atomic import atomic_path

    batch = str(min(bench["batch_sizes"]))
    fig, ax = plt.subplots(figsize=(6.5, 4))
    for r in bench["rows"]:
        lat = r.get("latency", {}).get(batch)
        if lat is None or r["accuracy"] is None:
            continue
        marker = "*" if r["deployed"] else ("s" if r["backend"] == "keras" else "o")
        ax.scatter(lat["p50_ms"], 100 * r["accuracy"], marker=marker, s=80 if r["deployed"] else 40)
        ax.annotate(r["name"], (lat["p50_ms"], 100 * r["accuracy"]), fontsize=7, xytext=(4, 3),
                    textcoords="offset points")
    ax.set_xscale("log")
    ax.set_xlabel(f"p50 latency at batch {batch} (ms, log scale)")
    ax.set_ylabel("accuracy per sequence (%)")
    ax.set_title("accuracy vs latency: unpruned, pruned, per precision")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    with atomic_path(out_png, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=100)
    plt.close(fig)
