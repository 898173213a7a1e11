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


def _latency(run: Path) -> dict[str, Any]:
    """p50 latency per batch size of the exported model's backend (Keras when none)."""
    if not (run / "bench.json").is_file():
        return {}
    results = read_json(run / "bench.json")["results"]
    exported = [r for r in results if not r["backend"].startswith("keras")]
    rows = exported or results
    backend = rows[0]["backend"]
    out: dict[str, Any] = {f"latency_ms_b{r['batch_size']}": r["p50_ms"] for r in rows if r["backend"] == backend}
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


def final_metrics(run: Path) -> dict[str, Any]:
    """A finished run's figures, flat: the last epochs, the folds' mean (``metrics.json``
    summary), ``test_*``, ``pruned_*``, ``params``, ``exported_*`` and ``latency_ms_b<batch>``."""
    from ..stages.train import headline

    metrics = read_json(run / "metrics.json")
    out: dict[str, Any] = {**last_epochs(run), **_numbers(metrics["summary"]["mean"])}
    if "test" in metrics:
        out.update(_numbers(headline(metrics["test"]), "test_"))
    out.update(_deployment(run))
    if "params" not in out:
        out["params"] = _params(run, metrics["best_fold"])
    return {**out, **_latency(run)}
