"""What percentile filter pruning buys: parameter, FLOPs and measured throughput ratios.

For cnn3d (25x60x60x2) and cnn2d_bmvc (60x60x50) at ``--width`` and each percentile, prints
pruned/unpruned ratios of parameters, FLOPs and inference throughput -- Keras
(``model(x, training=False)``) and ONNX Runtime (CPU; exported with gaitrun's Keras -> ONNX
converter) at batch 1 and 8. Throughput is measured in ``--rounds`` rounds that alternate the
unpruned and the pruned model, and the ratio of the best rounds is reported (the best round
is the one least slowed down by other processes on a shared machine). Target: ONNX Runtime throughput ratio >= 1.6 at p = 40.

The models are freshly initialised: their filter norms are nearly equal within a layer, so a
*global* threshold removes whole layers down to one filter (not what happens to trained
nets); the default ``--scope per_layer`` removes p % of every layer instead.

    python bench/pruning.py [--width 0.5] [--percentiles 10 40 60] [--scope per_layer]
                            [--granularity 1] [--rounds 5] [--seconds 0.6] [--threads 0]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

MODELS = {"cnn3d": (25, 60, 60, 2), "cnn2d_bmvc": (60, 60, 50)}
BATCHES = (1, 8)


def throughput(run: Callable[[], Any], batch: int, seconds: float) -> float:
    """Samples per second of ``run`` (one batch per call) over at least ``seconds`` and 3 calls."""
    run()
    calls, start = 0, time.perf_counter()
    while calls < 3 or time.perf_counter() - start < seconds:
        run()
        calls += 1
    return calls * batch / (time.perf_counter() - start)


def runners(model: Any, onnx_path: Path, x: np.ndarray, threads: int) -> dict[str, Callable[[], Any]]:
    """One callable per backend running ``model`` on ``x``."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    session = ort.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return {"keras": lambda: np.asarray(model(x, training=False)),
            "ort": lambda: session.run(None, {name: x})}


def compare(base: Any, pruned: Any, paths: tuple[Path, Path], shape: tuple[int, ...],
            args: argparse.Namespace) -> dict[str, float]:
    """Pruned/unpruned ratio of the best throughput over the rounds, per backend and batch size.

    The best of several alternating rounds is the least disturbed by other processes.
    """
    ratios: dict[str, float] = {}
    for batch in BATCHES:
        x = np.random.default_rng(0).normal(size=(batch, *shape)).astype("float32")
        run_base = runners(base, paths[0], x, args.threads)
        run_pruned = runners(pruned, paths[1], x, args.threads)
        for backend in run_base:
            best_base = best_pruned = 0.0
            for _ in range(args.rounds):
                best_base = max(best_base, throughput(run_base[backend], batch, args.seconds))
                best_pruned = max(best_pruned, throughput(run_pruned[backend], batch, args.seconds))
            ratios[f"{backend} b{batch}"] = best_pruned / best_base
    return ratios


def bench_model(arch: str, args: argparse.Namespace, folder: Path) -> list[dict[str, Any]]:
    """One row per percentile for ``arch``."""
    import importlib

    import keras

    from gaitrun.export.onnx_convert import keras_to_onnx
    from gaitrun.plugins.pruners.l1_percentile import Params
    from gaitrun.prune import prune_model

    module = importlib.import_module(f"gaitrun.plugins.architectures.{arch}")
    shape = MODELS[arch]
    keras.utils.set_random_seed(0)
    base = module.build(input_shape=shape, num_classes=150, params=module.Params(width=args.width))
    base_path = folder / f"{arch}.onnx"
    keras_to_onnx(base, base_path, input_name="input", opset=13)
    rows = []
    for p in args.percentiles:
        pruned, report = prune_model(base, Params(percentile=p, scope=args.scope,
                                                  granularity=args.granularity))
        path = folder / f"{arch}_p{p:g}.onnx"
        keras_to_onnx(pruned, path, input_name="input", opset=13)
        totals = report["totals"]
        row = {"model": arch, "p": p,
               **{key: totals[key]["after"] / totals[key]["before"] for key in ("params", "flops")},
               **compare(base, pruned, (base_path, path), shape, args)}
        print(f"  {arch} p={p:g} done: filters {totals['filters']['after']}/{totals['filters']['before']}",
              flush=True)
        rows.append(row)
    return rows


def print_table(rows: list[dict[str, Any]]) -> None:
    keys = ["params", "flops"] + [f"{b} b{n}" for b in ("keras", "ort") for n in BATCHES]
    print("\nratios pruned / unpruned (throughput: higher is faster)")
    print(f"{'model':<11} {'p':>4} " + " ".join(f"{k:>9}" for k in keys))
    for row in rows:
        print(f"{row['model']:<11} {row['p']:>4g} " + " ".join(
            f"{row[k]:>9.3f}" if k in ("params", "flops") else f"{row[k]:>8.2f}x" for k in keys))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--width", type=float, default=0.5)
    parser.add_argument("--percentiles", type=float, nargs="+", default=[10, 40, 60])
    parser.add_argument("--scope", choices=["global", "per_layer"], default="per_layer")
    parser.add_argument("--granularity", type=int, default=1, help="kept counts: multiples of this")
    parser.add_argument("--models", nargs="+", choices=list(MODELS), default=list(MODELS))
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=0.6, help="per throughput measurement")
    parser.add_argument("--threads", type=int, default=0, help="intra-op threads (0: the default)")
    args = parser.parse_args()
    if args.threads:
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        rows = [row for arch in args.models for row in bench_model(arch, args, Path(tmp))]
    print(f"width {args.width}, scope {args.scope}, criterion l1, granularity {args.granularity}, "
          f"threads {args.threads or 'default'}, {args.rounds} rounds x "
          f"{args.seconds:g} s per measurement")
    print_table(rows)


if __name__ == "__main__":
    main()
