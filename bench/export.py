"""Deployment speed and accuracy, in one process on this CPU, for finished gaitrun runs.

For each run folder given (e.g. of recipes/3dcnn_prune40.yaml and of a cnn2d_bmvc recipe with a
prune section) and each of its models (the best fold's "unpruned" model and the "pruned" one):
batch-1 latency of Keras ``model(x)``, ONNX Runtime and TFLite (FP32 and INT8, as the exporters
write them), the accuracy of each on the run's evaluation windows, top-1 agreement with Keras
and the largest output difference. Where the model has Conv3D layers the exporters rewrite
them as Conv2D over frames; the FP32 exports *without* that rewrite ("plain") are timed too,
so both effects show. Targets: ONNX Runtime >= 3x faster than Keras at batch 1; INT8 >= 1.5x
faster than FP32 of the same runtime (as shipped, i.e. both rewritten).

Timing is interleaved (one round = ``--per-round`` calls of every backend in turn; the figure
is the median over ``--rounds`` rounds of the per-call mean), so load from other processes hits
every backend alike; the load average and this process's CPU time are printed with each table.
Calibration windows come from the run's training split only.

    python bench/export.py RUN [RUN ...] [--threads 1] [--no-spin] [--rounds 15] [--per-round 10] [--json F]

Runs for both architectures, pruned and unpruned, from the main recipe (same data, training,
pruning and deploy sections; only the architecture differs):

    gaitrun run recipes/3dcnn_prune40.yaml --artifacts /tmp/exp
    gaitrun run recipes/3dcnn_prune40.yaml --set model.arch=cnn2d_bmvc --artifacts /tmp/exp2
    python bench/export.py /tmp/exp/3dcnn_prune40/<run> /tmp/exp2/3dcnn_prune40/<run> --threads 1
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# (label, target, precision, conv3d_as_2d)
EXPORTS = (("onnx fp32", "onnx", "fp32", True), ("onnx int8", "onnx", "int8", True),
           ("tflite fp32", "tflite", "fp32", True), ("tflite int8", "tflite", "int8", True))
PLAIN = (("onnx fp32 plain", "onnx", "fp32", False), ("tflite fp32 plain", "tflite", "fp32", False))


def _context(run: Path):
    from gaitrun.callbacks import CallbackList
    from gaitrun.recipe import load_recipe
    from gaitrun.registry import registries
    from gaitrun.runfolder import RunFolder
    from gaitrun.stages import RunContext

    folder = RunFolder.open(run)
    return RunContext(loaded=load_recipe(folder.file("recipe.yaml")), folder=folder, regs=registries(),
                      callbacks=CallbackList())


def _export(model, target: str, precision: str, rewrite: bool, out: Path, calib, regs) -> Path:
    from gaitrun.export import ExportContext

    plugin = regs["exporters"].get(target)
    ctx = ExportContext(out_dir=out, precision=precision, batch_sizes=(1,), calibration=calib,
                        input_name="input", labels=[], normalisation={})
    result = plugin.impl("export")(model, params=plugin.params(conv3d_as_2d=rewrite), ctx=ctx)
    return out / result["model"]


def _onnx_runner(path: Path, threads: int, spinning: bool):
    """An ONNX Runtime CPU session; ``spinning`` off stops idle pool threads busy-waiting (shared CPUs)."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.add_session_config_entry("session.intra_op.allow_spinning", "1" if spinning else "0")
    session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return lambda x: session.run(None, {name: x})


def interleaved(runners: dict, x, *, rounds: int, per_round: int, warmup: int = 5) -> dict[str, float]:
    """Median over rounds of the mean ms per call, every runner taking its turn in each round."""
    for run in runners.values():
        for _ in range(warmup):
            run(x)
    times: dict[str, list[float]] = {k: [] for k in runners}
    for _ in range(rounds):
        for name, run in runners.items():
            start = time.perf_counter()
            for _ in range(per_round):
                out = run(x)
                if hasattr(out, "numpy"):
                    out.numpy()
            times[name].append((time.perf_counter() - start) * 1000.0 / per_round)
    return {k: statistics.median(v) for k, v in times.items()}


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def bench_model(run_name: str, variant: str, path: Path, x, labels, calib, regs, args) -> list[dict]:
    """Every backend of one Keras model: accuracy, agreement, interleaved batch-1 latency."""
    import keras
    import numpy as np

    from gaitrun.export.parity import run_keras, score_backend
    from gaitrun.export.runtimes import keras as keras_runtime
    from gaitrun.export.runtimes import tflite as tflite_runtime
    from gaitrun.keras_io import load_model

    model = load_model(path)
    reference = run_keras(model, x)
    rows = {"keras model(x)": {"accuracy": float(np.mean(reference.argmax(-1) == labels)), "top1_agreement": 1.0,
                               "max_abs_diff": 0.0}}
    runners = {"keras model(x)": keras_runtime(path, threads=args.threads)}
    has_conv3d = any(isinstance(layer, keras.layers.Conv3D) for layer in model.layers)
    with tempfile.TemporaryDirectory() as tmp:
        for label, target, precision, rewrite in EXPORTS + (PLAIN if has_conv3d else ()):
            try:
                artifact = _export(model, target, precision, rewrite, Path(tmp) / label.replace(" ", "-"),
                                   calib, regs)
            except Exception as exc:  # a converter that cannot take this model: say so, go on
                rows[label] = {"error": f"{type(exc).__name__}: {str(exc)[:100]}"}
                continue
            out = score_backend(artifact, x)
            rows[label] = {"accuracy": float(np.mean(out.argmax(-1) == labels)),
                           "top1_agreement": float(np.mean(out.argmax(-1) == reference.argmax(-1))),
                           "max_abs_diff": float(np.abs(out - reference).max()),
                           "bytes": artifact.stat().st_size}
            runners[label] = _onnx_runner(artifact, args.threads, not args.no_spin) if target == "onnx" \
                else tflite_runtime(artifact, threads=args.threads)
        load_before, cpu_before = os.getloadavg(), _cpu_s()
        latency = interleaved(runners, np.ascontiguousarray(x[:1]), rounds=args.rounds, per_round=args.per_round)
        load_after, cpu = os.getloadavg(), _cpu_s() - cpu_before
    return [{"run": run_name, "model": variant, "backend": name, **row, "p50_ms": latency.get(name),
             "load_avg": [round(v, 2) for v in (*load_before, *load_after)], "timing_cpu_s": round(cpu, 1),
             "threads": args.threads, "ort_spinning": not args.no_spin}
            for name, row in rows.items()]


def bench_run(run: Path, args) -> list[dict]:
    from gaitrun.deploy_data import best_fold, calibration, windows
    from gaitrun.stages.data import prepared

    ctx = _context(run)
    prep, fold = prepared(ctx), best_fold(ctx)
    x, owners = windows(prep, fold.val, ctx.recipe)
    calib, _ = calibration(prep, fold.train, ctx.recipe, args.calibration_samples)
    rows = []
    for variant, path in (("unpruned", ctx.folder.file("folds", fold.name, "model.keras")),
                          ("pruned", ctx.folder.file("pruned", "model.keras"))):
        if path.is_file():
            rows += bench_model(f"{ctx.recipe.model.arch} {run.name}", variant, path, x, prep.labels[owners],
                                calib, ctx.regs, args)
    return rows


def report(rows: list[dict]) -> None:
    """A table per (run, model) and the target ratios."""
    for key in dict.fromkeys((r["run"], r["model"]) for r in rows):
        group = [r for r in rows if (r["run"], r["model"]) == key]
        first = group[0]
        print(f"\n{key[0]} / {key[1]}: batch 1, {first['threads']} threads (ORT spinning "
              f"{'on' if first['ort_spinning'] else 'off'}), load avg before/after "
              f"{first['load_avg']}, timing CPU {first['timing_cpu_s']} s")
        print(f"{'backend':18s} {'ms':>8s} {'accuracy':>9s} {'agree':>6s} {'max diff':>9s}")
        by = {}
        for r in group:
            if "error" in r:
                print(f"{r['backend']:18s} {'-':>8s}   {r['error']}")
                continue
            by[r["backend"]] = r
            print(f"{r['backend']:18s} {r['p50_ms']:8.3f} {r['accuracy']:9.3f} {r['top1_agreement']:6.3f} "
                  f"{r['max_abs_diff']:9.2e}")
        ratios = [("ONNX Runtime fp32 vs Keras model(x)", "keras model(x)", "onnx fp32", 3.0),
                  ("onnx int8 vs fp32", "onnx fp32", "onnx int8", 1.5),
                  ("tflite int8 vs fp32", "tflite fp32", "tflite int8", 1.5),
                  ("onnx fp32 rewrite vs plain", "onnx fp32 plain", "onnx fp32", None),
                  ("onnx int8 vs plain fp32", "onnx fp32 plain", "onnx int8", None),
                  ("tflite fp32 rewrite vs plain", "tflite fp32 plain", "tflite fp32", None),
                  ("tflite int8 vs plain fp32", "tflite fp32 plain", "tflite int8", None)]
        for text, slow, fast, target in ratios:
            if slow in by and fast in by:
                goal = f" (target >= {target:g}x: {'met' if by[slow]['p50_ms'] / by[fast]['p50_ms'] >= target else 'MISSED'})" \
                    if target else ""
                drop = by[slow]["accuracy"] - by[fast]["accuracy"]
                print(f"  {text}: {by[slow]['p50_ms'] / by[fast]['p50_ms']:.2f}x{goal}, accuracy lost {drop:+.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", type=Path, nargs="+", help="finished run folders")
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--per-round", type=int, default=10)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--no-spin", action="store_true",
                        help="ONNX Runtime threads sleep instead of spinning when idle (a loaded, shared CPU)")
    parser.add_argument("--calibration-samples", type=int, default=64)
    parser.add_argument("--json", type=Path, help="also write every row here")
    args = parser.parse_args()
    start, cpu = time.perf_counter(), _cpu_s()
    rows = [row for run in args.runs for row in bench_run(run, args)]
    report(rows)
    print(f"\nwall {time.perf_counter() - start:.0f} s, CPU {_cpu_s() - cpu:.0f} s, load avg {os.getloadavg()}")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
