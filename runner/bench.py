"""Inference benchmark of a run: every row of its trade-off table (``gaitrun.tradeoff``: the
unpruned and pruned Keras models and each exported variant, run by the deploy target's
``runtime`` hook) -- or, for a run without one, the Keras model and the recorded export --
at each of ``deploy.batch_sizes``: latency p50/p95 and throughput after warm-up, the rows timed
in interleaved rounds (``time_interleaved``), with the thread count and the CPU (model, int8
dot-product flags) recorded."""

from __future__ import annotations

import math
import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from .atomic import read_json
from .cpu import cpu_flags, cpu_model


def untabled_rows(folder: Path, model_path: Path) -> list[dict]:
    """The rows to time in a run folder without a trade-off table (``export/tradeoff.json``; e.g.
    its export was deferred): the Keras model, and the artefact ``export/export.json`` names,
    under its target and precision as recorded there (never guessed from file names)."""
    rows = [{"name": "keras", "backend": "keras", "artifact": _rel(model_path, folder)}]
    record = folder / "export" / "export.json"
    export = read_json(record) if record.is_file() else {}
    if export.get("model"):
        rows.append({"name": f"{export['target']} ({export['precision']})", "backend": export["target"],
                     "artifact": _rel(folder / "export" / export["model"], folder)})
    return rows


BLOCK = 10  # timed calls of one runner in a row, within a round of the interleaved timing
SETTLE = 2  # untimed calls before each block, at least: the previous runner's threads may still spin
SETTLE_S = 0.05  # ... and untimed calls for at least this long


def time_interleaved(runs: dict[str, Callable[[np.ndarray], Any]], x: np.ndarray, *, warmup: int,
                     iterations: int, min_time_s: float = 0.0, block: int = BLOCK, settle: int = SETTLE,
                     settle_s: float = SETTLE_S) -> dict[str, dict[str, float]]:
    """Latency and throughput of every runner on ``x``. After ``warmup`` calls each, the runners
    are timed in rounds, ``block`` calls of each in turn, until each has ``iterations`` calls:
    load that comes and goes on a shared machine then hits every runner alike, so their ratios
    (the trade-off table's speed-ups) hold, where timing one runner after the other let a busy
    moment fall on one of them (the main job's pruned INT8 at batch 1: 1.57-1.75 ms by run).
    Each block starts with untimed calls (``settle`` of them and for ``settle_s`` seconds at
    least): ONNX Runtime's and TensorFlow's pool threads spin for a while after a call, and with
    blocks of 5 and no settling, the calls right after another runner's measured up to 3x slower
    at batch 1 on 2 cores.

    A runner whose ``iterations`` calls take less than ``min_time_s`` (judged by the median of
    its calls so far) gets as many calls as fill it, in longer blocks over the same rounds: 30
    calls of a 1 ms model are 30 ms of the machine's time. (Re-timing one run of the main job four
    times, pruned over unpruned INT8 at batch 1 spread over 1.47-1.61x with 30 calls and 1.49-1.60x
    with 0.3 s: most of the spread is between whole runs.)"""
    for run in runs.values():
        for _ in range(warmup):
            _call(run, x)
    rounds = math.ceil(iterations / block)
    times: dict[str, list[float]] = {name: [] for name in runs}

    def wanted(name: str) -> int:
        if not times[name] or min_time_s <= 0:
            return iterations
        return max(iterations, math.ceil(min_time_s * 1000.0 / max(statistics.median(times[name]), 1e-3)))

    while any(len(times[name]) < wanted(name) for name in runs):
        for name, run in runs.items():
            if len(times[name]) >= wanted(name):
                continue
            start, calls = time.perf_counter(), 0
            while calls < settle or time.perf_counter() - start < settle_s:
                _call(run, x)
                calls += 1
            for _ in range(min(math.ceil(wanted(name) / rounds), wanted(name) - len(times[name]))):
                start = time.perf_counter()
                _call(run, x)
                times[name].append((time.perf_counter() - start) * 1000.0)
    return {name: _figures(t, len(x)) for name, t in times.items()}


def _call(run: Callable[[np.ndarray], Any], x: np.ndarray) -> None:
    out = run(x)
    if hasattr(out, "numpy"):  # an eager tensor: wait for the value
        out.numpy()


def _figures(times: list[float], batch: int) -> dict[str, float]:
    times = sorted(times)
    p95 = times[min(len(times) - 1, int(round(0.95 * (len(times) - 1))))]
    mean = statistics.fmean(times)
    return {"p50_ms": statistics.median(times), "p95_ms": p95, "mean_ms": mean,
            "throughput_per_s": batch * 1000.0 / mean, "calls": len(times)}


def run_bench(folder: Path, model_path: Path, input_shape: tuple[int, ...], deploy: Any, seed: int,
              runtime: Callable[..., Any] | None = None) -> dict:
    """Time every row of the run's trade-off table (or, without one, every backend found) at
    each of ``deploy.batch_sizes``; ``runtime`` runs the deploy target's artefacts."""
    threads = deploy.bench.threads or os.cpu_count() or 1
    table = folder / "export" / "tradeoff.json"
    rows = read_json(table)["rows"] if table.is_file() else untabled_rows(folder, model_path)
    rng = np.random.default_rng(seed)
    inputs = {b: rng.standard_normal((b, *input_shape)).astype(np.float32) for b in deploy.batch_sizes}
    runs = {}
    for row in rows:
        artifact = folder / row["artifact"]
        factory = _runtime(row, artifact, runtime)
        if factory is not None:
            runs[row["name"]] = factory(artifact, threads=threads)
    timed = {batch: time_interleaved(runs, x, warmup=deploy.bench.warmup, iterations=deploy.bench.iterations,
                                     min_time_s=deploy.bench.min_time_s)
             for batch, x in inputs.items()}
    results = []
    for row in rows:
        if row["name"] not in runs:
            continue
        row["latency"] = {str(batch): timed[batch][row["name"]] for batch in inputs}
        results.extend({"backend": row["name"], "artifact": row["artifact"], "batch_size": batch,
                        **timed[batch][row["name"]]} for batch in inputs)
    out = {"threads": threads, "warmup": deploy.bench.warmup, "iterations": deploy.bench.iterations,
           "min_time_s": deploy.bench.min_time_s,
           "input_shape": list(input_shape), "batch_sizes": list(deploy.batch_sizes), "cpu": cpu_info(),
           "results": results}
    if table.is_file():
        from .tradeoff import speedups

        speedups(rows, list(deploy.batch_sizes))
        out["rows"] = rows
    return out


def _runtime(row: dict, artifact: Path, runtime: Callable[..., Any] | None) -> Callable[..., Any] | None:
    from .export import runtimes

    if row["backend"] == "keras" or runtime is None:
        return runtimes.for_path(artifact)
    return runtime


def _rel(path: Path, root: Path) -> str:
    return path.relative_to(root).as_posix() if path.is_relative_to(root) else str(path)


def cpu_info() -> dict[str, Any]:
    """The CPU model and whether it has int8 dot-product instructions (they change INT8 speed)."""
    flags = cpu_flags()
    return {"model": cpu_model(), "cores": os.cpu_count(), "avx512_vnni": "avx512_vnni" in flags,
            "avx_vnni": "avx_vnni" in flags, "avx512f": "avx512f" in flags}


def print_table(bench: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"inference benchmark ({bench['threads']} threads)")
    for col in ("backend", "batch", "p50 ms", "p95 ms", "samples/s"):
        table.add_column(col, justify="right" if col != "backend" else "left")
    for r in bench["results"]:
        table.add_row(r["backend"], str(r["batch_size"]), f"{r['p50_ms']:.2f}", f"{r['p95_ms']:.2f}",
                      f"{r['throughput_per_s']:.1f}")
    Console(stderr=True).print(table)


def plot(bench: dict, out_png: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .atomic import atomic_path

    fig, ax = plt.subplots(figsize=(6, 3.5))
    names = list(dict.fromkeys(r["backend"] for r in bench["results"]))
    for name in names:
        rows = [r for r in bench["results"] if r["backend"] == name]
        ax.plot([r["batch_size"] for r in rows], [r["throughput_per_s"] for r in rows], marker="o", label=name)
    ax.set_xlabel("batch size")
    ax.set_ylabel("samples / s")
    ax.set_xscale("log", base=2)
    ax.legend(fontsize=7)
    fig.tight_layout()
    with atomic_path(out_png, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=100)
    plt.close(fig)
