"""What percentile filter pruning buys: parameter, FLOPs and measured throughput ratios.

For cnn3d (25x60x60x2) and cnn2d_bmvc (60x60x50) at ``--width``, prints pruned/unpruned
ratios of filters, parameters, FLOPs and inference throughput -- Keras
(``model(x, training=False)``) and ONNX Runtime (CPU; the FP32 graph gaitrun's ``onnx``
exporter writes: Conv3D as Conv2D over frames, conv input channels padded to multiples of 8,
consecutive linear layers folded into one; ``--no-fold`` leaves the linear layers apart,
``--plain-onnx`` measures the converter's graph without any rewrite) at batch 1 and 8 --
for every setting in one run: ``scope per_layer`` at each of
``--percentiles`` (granularity 1: exactly p % of every layer's filters go), and at p = 40
each of ``--extra`` (default: ``per_layer`` with granularity 8, and ``global`` with
``normalise max``, the scope the recipes use).

Throughput is measured in ``--rounds`` rounds that alternate the unpruned and the pruned
model. Three ratios are printed: wall clock (the best round of each: the least slowed down by
other processes on a shared machine), CPU time (user + sys of the whole process per sample,
the best round of each: less sensitive to other processes taking the cores, but counting ONNX
Runtime's spin-waiting threads) and, for ONNX Runtime, the median with a 95 % bootstrap
interval of it and the range of the per-round ratios (each pruned measurement against the
unpruned one just before it, so a slow-down that lasts a round hits both). Target: ONNX Runtime
throughput ratio >= 1.6 at p = 40.

The models are freshly initialised: their filter norms are nearly equal within a layer, so a
*global* threshold without normalisation would remove whole layers down to one filter (not
what happens to trained nets); ``per_layer`` removes p % of every layer instead.
``--trained ARCH=RUN`` measures the best fold's model of a finished gaitrun run instead (e.g.
one of ``bench/pruning_finetune.py``), where a global threshold means what it does in use.

The default width is 1.0, the published sizes. The speed-up depends on width because ONNX
Runtime's blocked (NCHWc) convolution on AVX2 costs steps, not a line, in the number of
filters (``bench/conv_filter_steps.py``): a layer pruned from 32 to 19 filters (cnn3d's conv1
at width 0.5) costs like 24, so at width 0.5 cnn3d gains 1.46-1.57x at p = 40 against
1.9-2.0x at width 1.0.

    python bench/pruning.py [--width 1.0] [--percentiles 10 40 60]
                            [--extra per_layer:8 global:max] [--rounds 5] [--seconds 0.6]
                            [--threads 0] [--no-fold] [--plain-onnx] [--trained ARCH=RUN ...]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

MODELS = {"cnn3d": (25, 60, 60, 2), "cnn2d_bmvc": (60, 60, 50)}
BATCHES = (1, 8)
BACKENDS = ("keras", "ort")


def throughput(run: Callable[[], Any], batch: int, seconds: float) -> tuple[float, float]:
    """Samples per wall-clock second and per CPU second (user + sys, all threads) of ``run``
    (one batch per call) over at least ``seconds`` and 3 calls."""
    run()
    calls, start, cpu = 0, time.perf_counter(), time.process_time()
    while calls < 3 or time.perf_counter() - start < seconds:
        run()
        calls += 1
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    return calls * batch / wall, calls * batch / max(cpu, 1e-9)


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
    """Pruned/unpruned ratios of the best wall-clock and CPU-time throughput over the rounds,
    per backend and batch size (keys ``"ort b8"`` and ``"ort b8 cpu"``)."""
    ratios: dict[str, float] = {}
    for batch in BATCHES:
        x = np.random.default_rng(0).normal(size=(batch, *shape)).astype("float32")
        run_base = runners(base, paths[0], x, args.threads)
        run_pruned = runners(pruned, paths[1], x, args.threads)
        for backend in BACKENDS:
            rounds = np.array([[throughput(run[backend], batch, args.seconds) for run in (run_base, run_pruned)]
                               for _ in range(args.rounds)])  # round x [base, pruned] x [wall, cpu]
            best = rounds.max(axis=0)
            ratios[f"{backend} b{batch}"] = best[1, 0] / best[0, 0]
            ratios[f"{backend} b{batch} cpu"] = best[1, 1] / best[0, 1]
            paired = rounds[:, 1, 0] / rounds[:, 0, 0]  # each round's pruned vs the unpruned just before
            ratios[f"{backend} b{batch} paired"] = (float(np.median(paired)), *median_interval(paired),
                                                    float(paired.min()), float(paired.max()))
    return ratios


def median_interval(values: np.ndarray, resamples: int = 4000) -> tuple[float, float]:
    """A 95 % bootstrap interval of the median of ``values`` (percentile method, fixed seed)."""
    rng = np.random.default_rng(0)
    medians = np.median(rng.choice(values, size=(resamples, len(values))), axis=1)
    low, high = np.percentile(medians, [2.5, 97.5])
    return float(low), float(high)


def settings(args: argparse.Namespace) -> list[dict[str, Any]]:
    """The pruner settings to measure: the percentile sweep, then the extra p = 40 rows."""
    rows = [{"percentile": p, "scope": "per_layer"} for p in args.percentiles]
    for extra in args.extra:
        scope, _, option = extra.partition(":")
        row = {"percentile": 40.0, "scope": scope}
        row.update({"granularity": int(option)} if option.isdigit() else
                   {"normalise": option} if option else {})
        rows.append(row)
    return rows


def label(setting: dict[str, Any]) -> str:
    """A short name of a setting for the table: ``per_layer``, ``per_layer g8``, ``global max``."""
    extra = ([f"g{setting['granularity']}"] if "granularity" in setting else []) + \
            ([setting["normalise"]] if "normalise" in setting else [])
    return " ".join([setting["scope"], *extra])


def trained_model(run: Path, shape: tuple[int, ...]) -> Any:
    """The best fold's model of the finished gaitrun run ``run`` (its ``metrics.json`` names the
    fold); its input must have ``shape``."""
    import json

    from gaitrun.keras_io import load_model

    best = json.loads((run / "metrics.json").read_text())["best_fold"]
    model = load_model(run / "folds" / str(best) / "model.keras", compile=False)
    if tuple(model.input_shape[1:]) != shape:
        raise SystemExit(f"{run}: model input {model.input_shape[1:]}, the bench measures {shape}")
    return model


def bench_model(arch: str, args: argparse.Namespace, folder: Path) -> list[dict[str, Any]]:
    """One row per setting for ``arch``."""
    import importlib

    import keras

    from gaitrun.export.onnx_convert import keras_to_onnx
    from gaitrun.plugins.pruners.l1_percentile import Params
    from gaitrun.prune import prune_model

    shape = MODELS[arch]
    if arch in args.trained:
        base = trained_model(Path(args.trained[arch]), shape)
    else:
        module = importlib.import_module(f"gaitrun.plugins.architectures.{arch}")
        keras.utils.set_random_seed(0)
        base = module.build(input_shape=shape, num_classes=150, params=module.Params(width=args.width))
    rewrite = not args.plain_onnx
    convert = dict(input_name="input", opset=13, conv3d_as_2d=rewrite, pad_channels=rewrite,
                   fold_linear=rewrite and not args.no_fold)
    base_path = folder / f"{arch}.onnx"
    keras_to_onnx(base, base_path, **convert)
    rows = []
    for i, setting in enumerate(settings(args)):
        pruned, report = prune_model(base, **Params(**{"granularity": 1, **setting}).model_dump(), protected={"embedding"})
        path = folder / f"{arch}_{i}.onnx"
        keras_to_onnx(pruned, path, **convert)
        totals = report["totals"]
        rows.append({"model": arch, "p": setting["percentile"], "setting": label(setting),
                     **{key: totals[key]["after"] / totals[key]["before"]
                        for key in ("filters", "params", "flops")},
                     **compare(base, pruned, (base_path, path), shape, args),
                     "load": os.getloadavg()[0]})
        kept = {name: layer["filters_after"] for name, layer in report["layers"].items()}
        print(f"  {arch} p={setting['percentile']:g} {label(setting)}: kept {kept}", flush=True)
    return rows


def print_table(rows: list[dict[str, Any]]) -> None:
    sizes = ["filters", "params", "flops"]
    speeds = [f"{b} b{n}" for b in BACKENDS for n in BATCHES]
    print("\nratios pruned / unpruned (throughput: higher is faster; 'cpu': per CPU second)")
    keys = sizes + speeds + [f"ort b{n} cpu" for n in BATCHES]
    print(f"{'model':<11} {'p':>3} {'setting':<13} " + " ".join(f"{k:>10}" for k in keys) + "   load")
    for row in rows:
        cells = [f"{row[k]:>10.3f}" if k in sizes else f"{row[k]:>9.2f}x" for k in keys]
        print(f"{row['model']:<11} {row['p']:>3g} {row['setting']:<13} " + " ".join(cells)
              + f"  {row['load']:5.2f}")
    print("\nONNX Runtime wall clock, each round's pruned vs the unpruned measured just before it: "
          "median [95 % bootstrap interval of the median] (min-max) over the rounds")
    for row in rows:
        cells = ["b{}  {:.2f}x [{:.2f}-{:.2f}] ({:.2f}-{:.2f})".format(n, *row[f"ort b{n} paired"])
                 for n in BATCHES]
        print(f"{row['model']:<11} {row['p']:>3g} {row['setting']:<13} " + "   ".join(cells))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--width", type=float, default=1.0)
    parser.add_argument("--percentiles", type=float, nargs="+", default=[10, 40, 60],
                        help="scope per_layer, granularity 1")
    parser.add_argument("--extra", nargs="*", default=["per_layer:8", "global:max"],
                        help="more p = 40 rows: SCOPE[:GRANULARITY or :NORMALISE]")
    parser.add_argument("--models", nargs="+", choices=list(MODELS), default=list(MODELS))
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=0.6, help="per throughput measurement")
    parser.add_argument("--threads", type=int, default=0, help="intra-op threads (0: the default)")
    parser.add_argument("--trained", nargs="*", default=[], metavar="ARCH=RUN",
                        help="measure the trained model of this finished run instead of fresh weights")
    parser.add_argument("--no-fold", action="store_true",
                        help="keep consecutive linear layers apart (the exporter's fold_linear: false)")
    parser.add_argument("--plain-onnx", action="store_true",
                        help="ONNX graphs as converted, without the exporter's rewrites")
    args = parser.parse_args()
    args.trained = dict(item.split("=", 1) for item in args.trained)
    if args.threads:
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    start, load = time.perf_counter(), os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        rows = [row for arch in args.models for row in bench_model(arch, args, Path(tmp))]
    trained = "".join(f", {arch} trained in {run}" for arch, run in args.trained.items())
    graph = "plain" if args.plain_onnx else "as exported without fold" if args.no_fold else "as exported"
    print(f"width {args.width} (fresh models){trained}, criterion l1, onnx {graph}, threads {args.threads or 'default'}, {args.rounds} "
          f"rounds x {args.seconds:g} s per measurement; {time.perf_counter() - start:.0f} s; "
          f"load average at start {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}, "
          f"at end {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    print_table(rows)


if __name__ == "__main__":
    main()
