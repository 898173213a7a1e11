"""A trial's figures, read from its finished run folder: what a sweep reports to Tune and
writes to the trial table (no Ray here)."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from ..atomic import read_json


def epoch_result(logs: dict[str, float]) -> dict[str, float]:
    """Keras epoch logs for Tune: training figures that have a ``val_`` twin get ``train_``,
    so ``accuracy`` names the evaluated accuracy (as in metrics.json), not the training one."""
    return {f"train_{k}" if f"val_{k}" in logs else k: float(v) for k, v in logs.items()}


def _numbers(mapping: dict[str, Any], prefix: str = "") -> dict[str, float]:
    return {f"{prefix}{k}": float(v) for k, v in mapping.items()
            if isinstance(v, (int, float)) and not isinstance(v, bool)}


def last_epochs(run: Path) -> dict[str, float]:
    """The last epoch's figures of every fold (``folds/*/history.csv``), averaged over folds."""
    rows = []
    for history in sorted(run.glob("folds/*/history.csv")):
        with history.open(newline="") as fh:
            last = list(csv.DictReader(fh))[-1:]
        rows += [{k: float(v) for k, v in row.items() if k != "epoch" and v not in ("", None)} for row in last]
    keys = {k for row in rows for k in row}
    mean = {k: sum(r[k] for r in rows if k in r) / sum(1 for r in rows if k in r) for k in keys}
    return epoch_result(mean)


def deployed_row(bench: dict[str, Any]) -> dict[str, Any] | None:
    """The trade-off table's deployed row (the model the run ships), if ``bench.json`` has a table."""
    return next((r for r in bench.get("rows", []) if r.get("deployed") and r.get("latency")), None)


def _latency(run: Path) -> dict[str, Any]:
    """The deployed model's p50 latency per batch size, size and score (the deployed row of the
    trade-off table; without a table, the first exported backend's latency, Keras when none)."""
    if not (run / "bench.json").is_file():
        return {}
    bench = read_json(run / "bench.json")
    row = deployed_row(bench)
    if row is not None:
        out: dict[str, Any] = {f"latency_ms_b{b}": t["p50_ms"] for b, t in row["latency"].items()}
        out.update({"latency_backend": row["name"], "exported_bytes": row["bytes"]})
        if row.get("accuracy") is not None:
            out["exported_accuracy"] = row["accuracy"]  # per sequence, as metrics.json's accuracy
        return out
    results = bench["results"]
    exported = [r for r in results if not r["backend"].startswith("keras")]
    rows = exported or results
    backend = rows[0]["backend"]
    out = {f"latency_ms_b{r['batch_size']}": r["p50_ms"] for r in rows if r["backend"] == backend}
    return {**out, "latency_backend": backend}


def _deployment(run: Path) -> dict[str, Any]:
    """Pruned model's figures and size (``pruned/pruning.json``) and the exported model's score."""
    out: dict[str, Any] = {}
    pruning = run / "pruned" / "pruning.json"
    if pruning.is_file():
        info = read_json(pruning)
        out.update(_numbers(info["after_finetune"]["mean"], "pruned_"))
        totals = info["report"]["totals"]
        out.update({"params": totals["params"]["after"], "flops": totals["flops"]["after"]})
    export = run / "export" / "export.json"
    parity = read_json(export).get("parity") if export.is_file() else None
    if parity:
        out[f"exported_{parity['metric']}"] = parity["exported"]
    return out


def _params(run: Path, best_fold: str) -> int:
    from ..keras_io import load_model

    return int(load_model(run / "folds" / best_fold / "model.keras").count_params())


def trained_run(run: Path) -> Path:
    """The run folder holding the trained folds: ``run``, or the run it reuses (``gaitrun
    prune RUN``, a trial of a ``share_training`` sweep)."""
    manifest = run / "manifest.json"
    source = read_json(manifest).get("reuses_run") if manifest.is_file() else None
    return Path(source) if source else run


def final_metrics(run: Path) -> dict[str, Any]:
    """A finished run's figures, flat: the last epochs, the folds' mean (``metrics.json``
    summary), ``test_*``, ``pruned_*``, ``params``, ``exported_*`` and ``latency_ms_b<batch>``
    (of the deployed model). Training figures come from the run it reuses, if it reuses one."""
    from ..stages.train import headline

    trained = trained_run(run)
    metrics = read_json(trained / "metrics.json")
    out: dict[str, Any] = {**last_epochs(trained), **_numbers(metrics["summary"]["mean"])}
    if "test" in metrics:
        out.update(_numbers(headline(metrics["test"]), "test_"))
    out.update(_deployment(run))
    if "params" not in out:
        out["params"] = _params(trained, metrics["best_fold"])
    return {**out, **_latency(run)}
