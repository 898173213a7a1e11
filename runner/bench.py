"""Inference benchmark of a run's deployed model on every backend available here:
Keras/TF ``model(x)``, ONNX Runtime, TFLite (and TensorRT when an engine and a GPU exist),
for each of ``deploy.batch_sizes``: latency p50/p95 and throughput after warm-up, with the
thread count recorded. Writes ``bench.json`` and ``plots/bench.png``."""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from .keras_io import load_model


def _keras_runner(path: Path, threads: int) -> Callable[[np.ndarray], Any]:
    import tensorflow as tf

    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
    except RuntimeError:
        pass  # already initialised in this process; the count is recorded as asked
    model = load_model(path)
    return lambda x: model(x, training=False)


def _onnx_runner(path: Path, threads: int) -> Callable[[np.ndarray], Any]:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return lambda x: session.run(None, {name: x})


def _tflite_runner(path: Path, threads: int) -> Callable[[np.ndarray], Any]:
    import tensorflow as tf

    interp = tf.lite.Interpreter(model_path=str(path), num_threads=threads)
    inp, out = interp.get_input_details()[0], interp.get_output_details()[0]
    shape: list[Any] = [None]

    def run(x: np.ndarray) -> Any:
        if shape[0] != x.shape:
            interp.resize_tensor_input(inp["index"], x.shape)
            interp.allocate_tensors()
            shape[0] = x.shape
        interp.set_tensor(inp["index"], x)
        interp.invoke()
        return interp.get_tensor(out["index"])

    return run


def backends(folder: Path, model_path: Path) -> dict[str, tuple[Path, Callable]]:
    """Backend name -> (artifact, runner factory) for what the run folder holds."""
    found: dict[str, tuple[Path, Callable]] = {"keras": (model_path, _keras_runner)}
    export = folder / "export"
    for onnx in sorted(export.glob("*.onnx")):
        found[f"onnxruntime ({onnx.stem.split('.')[-1]})"] = (onnx, _onnx_runner)
    for tfl in sorted(export.glob("*.tflite")):
        found[f"tflite ({tfl.stem.split('.')[-1]})"] = (tfl, _tflite_runner)
    return found


def time_runner(run: Callable[[np.ndarray], Any], x: np.ndarray, *, warmup: int, iterations: int) -> dict[str, float]:
    for _ in range(warmup):
        run(x)
    times = []
    for _ in range(iterations):
        start = time.perf_counter()
        out = run(x)
        if hasattr(out, "numpy"):
            out.numpy()
        times.append((time.perf_counter() - start) * 1000.0)
    times.sort()
    p95 = times[min(len(times) - 1, int(round(0.95 * (len(times) - 1))))]
    mean = statistics.fmean(times)
    return {"p50_ms": statistics.median(times), "p95_ms": p95, "mean_ms": mean,
            "throughput_per_s": len(x) * 1000.0 / mean}


def run_bench(folder: Path, model_path: Path, input_shape: tuple[int, ...], deploy: Any, seed: int) -> dict:
    threads = deploy.bench.threads or os.cpu_count() or 1
    rng = np.random.default_rng(seed)
    results = []
    for name, (artifact, factory) in backends(folder, model_path).items():
        runner = factory(artifact, threads)
        for batch in deploy.batch_sizes:
            x = rng.standard_normal((batch, *input_shape)).astype(np.float32)
            figures = time_runner(runner, x, warmup=deploy.bench.warmup, iterations=deploy.bench.iterations)
            results.append({"backend": name, "artifact": str(artifact.relative_to(folder)) if artifact.is_relative_to(folder)
                            else str(artifact), "batch_size": batch, **figures})
    return {"threads": threads, "warmup": deploy.bench.warmup, "iterations": deploy.bench.iterations,
            "input_shape": list(input_shape), "results": results}


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
