"""Deployment speed and accuracy, in one run on this CPU, for finished gaitrun runs (e.g. of
recipes/3dcnn_prune40.yaml and recipes/2dcnn_of.yaml with a prune section): for the
unpruned and the pruned model, batch-1 latency of Keras ``model(x)`` vs ONNX Runtime, INT8 vs
FP32 speed for ONNX Runtime and TFLite, and the accuracy each export loses on the run's
evaluation windows. Targets: ONNX Runtime >= 3x faster than Keras at batch 1; INT8 >= 1.5x
faster than FP32.

    python bench/export.py artifacts/3dcnn_prune40/<run> [more runs] [--iterations 50]
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _context(run: Path):
    from gaitrun.callbacks import CallbackList
    from gaitrun.recipe import load_recipe
    from gaitrun.registry import registries
    from gaitrun.runfolder import RunFolder
    from gaitrun.stages import RunContext

    folder = RunFolder.open(run)
    return RunContext(loaded=load_recipe(folder.file("recipe.yaml")), folder=folder, regs=registries(),
                      callbacks=CallbackList())


def _export(model, target: str, precision: str, out: Path, calib, regs):
    from gaitrun.export import ExportContext

    plugin = regs["exporters"].get(target)
    ctx = ExportContext(out_dir=out, precision=precision, batch_sizes=(1,), calibration=calib,
                        input_name="input", labels=[], normalisation={})
    result = plugin.impl("export")(model, params=plugin.params(), ctx=ctx)
    return out / result["model"]


def bench_run(run: Path, iterations: int) -> list[dict]:
    import numpy as np

    from gaitrun.bench import _keras_runner, _onnx_runner, _tflite_runner, time_runner
    from gaitrun.deploy_data import best_fold, calibration, windows
    from gaitrun.export.parity import score_backend
    from gaitrun.stages.data import prepared

    ctx = _context(run)
    prep, fold = prepared(ctx), best_fold(ctx)
    x, owners = windows(prep, fold.val, ctx.recipe)
    labels = prep.labels[owners]
    calib, _ = calibration(prep, fold.train, ctx.recipe, 64)
    threads = os.cpu_count() or 1
    rows = []
    variants = [("unpruned", ctx.folder.file("folds", fold.name, "model.keras")),
                ("pruned", ctx.folder.file("pruned", "model.keras"))]
    for variant, path in variants:
        if not path.is_file():
            continue
        from gaitrun.keras_io import load_model

        model = load_model(path)
        keras_acc = float(np.mean(np.asarray(model.predict(x, verbose=0)).argmax(-1) == labels))
        one = x[:1]
        rows.append({"run": run.name, "model": variant, "backend": "keras model(x)", "accuracy": keras_acc,
                     **time_runner(_keras_runner(path, threads), one, warmup=5, iterations=iterations)})
        with tempfile.TemporaryDirectory() as tmp:
            for target, precision, factory in (("onnx", "fp32", _onnx_runner), ("onnx", "int8", _onnx_runner),
                                               ("tflite", "fp32", _tflite_runner), ("tflite", "int8", _tflite_runner)):
                try:
                    artifact = _export(model, target, precision, Path(tmp) / f"{target}-{precision}", calib, ctx.regs)
                except Exception as exc:  # a converter that cannot take this model: say so, go on
                    rows.append({"run": run.name, "model": variant, "backend": f"{target} {precision}",
                                 "error": f"{type(exc).__name__}: {str(exc)[:80]}"})
                    continue
                acc = float(np.mean(score_backend(artifact, x).argmax(-1) == labels))
                rows.append({"run": run.name, "model": variant, "backend": f"{target} {precision}", "accuracy": acc,
                             **time_runner(factory(artifact, threads), one, warmup=5, iterations=iterations)})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", type=Path, nargs="+")
    parser.add_argument("--iterations", type=int, default=50)
    args = parser.parse_args()
    for run in args.runs:
        rows = bench_run(run, args.iterations)
        print(f"\n{run} ({os.cpu_count()} threads, batch 1)")
        print(f"{'model':9s} {'backend':16s} {'p50 ms':>8s} {'accuracy':>9s}")
        base = {}
        for r in rows:
            if "error" in r:
                print(f"{r['model']:9s} {r['backend']:16s} {'-':>8s}   {r['error']}")
                continue
            base.setdefault((r["model"], r["backend"].split()[0]), r)
            print(f"{r['model']:9s} {r['backend']:16s} {r['p50_ms']:8.3f} {r['accuracy']:9.3f}")
        for model in ("unpruned", "pruned"):
            by = {r["backend"]: r for r in rows if r["model"] == model and "error" not in r}
            if "keras model(x)" in by and "onnx fp32" in by:
                print(f"{model}: ONNX Runtime fp32 vs Keras model(x): "
                      f"{by['keras model(x)']['p50_ms'] / by['onnx fp32']['p50_ms']:.1f}x (target >= 3x)")
            for t in ("onnx", "tflite"):
                if f"{t} fp32" in by and f"{t} int8" in by:
                    f, i = by[f"{t} fp32"], by[f"{t} int8"]
                    print(f"{model}: {t} int8 vs fp32: {f['p50_ms'] / i['p50_ms']:.2f}x faster (target >= 1.5x), "
                          f"accuracy {f['accuracy']:.3f} -> {i['accuracy']:.3f}")


if __name__ == "__main__":
    main()
