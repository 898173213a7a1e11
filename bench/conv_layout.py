"""Channels-first vs channels-last Conv3D rewrite, for finished gaitrun runs' ONNX exports.

For each run folder given (of recipes/3dcnn_prune40.yaml or another recipe with Conv3D layers and
a prune section), the best fold's unpruned model and the pruned one are exported with the
``onnx`` exporter at ``--precision`` (default int8, calibrated on the run's training windows as
the export stage does) once per ``conv_layout``, and all four graphs are timed in interleaved
rounds (``gaitrun.bench.time_interleaved``, as the bench stage times the trade-off table) at
each ``--batch-sizes`` on the run's evaluation windows. Printed per run: p50 ms of every graph,
the pruned over unpruned speed-up in each layout, how much faster each model is channels last,
and the largest output difference between the two layouts.

    python bench/conv_layout.py RUN [RUN ...] [--precision int8|fp32] [--batch-sizes 1 8]
        [--iterations 60] [--threads 2]

The figures in ``gaitrun/export/conv3d_as_2d.py`` and README "Deployment" come from the main
job's three seeds:

    python bench/recipes.py --seeds 3 --recipe 3dcnn_prune40 --artifacts /tmp/seeds
    python bench/conv_layout.py /tmp/seeds/3dcnn_prune40/*
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parent))

from export import _context  # noqa: E402  (bench/export.py: a finished run as a RunContext)

LAYOUTS = ("channels_first", "channels_last")


def compare(run: Path, *, precision: str, batch_sizes: list[int], iterations: int, threads: int) -> None:
    import numpy as np

    from gaitrun.bench import time_interleaved
    from gaitrun.data.pipeline import eval_dataset
    from gaitrun.deploy_data import best_fold, calibration
    from gaitrun.export import ExportContext
    from gaitrun.export.runtimes import onnx as onnx_runtime
    from gaitrun.keras_io import load_model
    from gaitrun.stages.data import prepared

    ctx = _context(run)
    prep, fold, recipe = prepared(ctx), best_fold(ctx), ctx.recipe
    clip = recipe.data.clip
    ds, _ = eval_dataset(prep.store, fold.val, None, kind=prep.kind, frames=clip.frames, stride=clip.stride,
                         pad=clip.pad, batch_size=max(batch_sizes))
    x = next(iter(ds)).numpy().astype(np.float32)
    calib = calibration(prep, fold.train, recipe, recipe.deploy.calibration_samples)[0]
    plugin = ctx.regs["exporters"].get("onnx")
    models = {"unpruned": run / "folds" / str(fold.name) / "model.keras", "pruned": run / "pruned" / "model.keras"}
    runners, outputs = {}, {}
    with tempfile.TemporaryDirectory() as work:
        for name, path in models.items():
            model = load_model(path, compile=False)
            for layout in LAYOUTS:
                out = Path(work) / f"{name}-{layout}"
                export = ExportContext(out_dir=out, precision=precision, batch_sizes=tuple(batch_sizes),
                                       calibration=calib, input_name="input", labels=[], normalisation={})
                artifact = out / plugin.impl("export")(model, params=plugin.params(conv_layout=layout),
                                                       ctx=export)["model"]
                runners[f"{name} {layout}"] = onnx_runtime(artifact, threads=threads)
                outputs[f"{name} {layout}"] = runners[f"{name} {layout}"](x)
        print(f"\n{run.name}: {precision}, {threads} threads, p50 of {iterations} calls per graph")
        for name in models:
            diff = float(np.abs(outputs[f"{name} channels_last"] - outputs[f"{name} channels_first"]).max())
            print(f"  {name}: largest output difference between the layouts {diff:.2e}")
        for batch in batch_sizes:
            t = {k: v["p50_ms"] for k, v in time_interleaved(runners, x[:batch], warmup=5,
                                                              iterations=iterations).items()}
            print(f"  batch {batch}: " + ", ".join(f"{k} {v:.2f} ms" for k, v in t.items()))
            for layout in LAYOUTS:
                print(f"    {layout}: pruned over unpruned {t[f'unpruned {layout}'] / t[f'pruned {layout}']:.2f}x")
            for name in models:
                gain = t[f"{name} channels_first"] / t[f"{name} channels_last"]
                print(f"    {name}: channels last {gain:.2f}x as fast as channels first")


def main() -> None:
    from gaitrun.bench import cpu_info

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("runs", nargs="+", type=Path)
    ap.add_argument("--precision", choices=("int8", "fp32"), default="int8")
    ap.add_argument("--batch-sizes", nargs="+", type=int, default=[1, 8])
    ap.add_argument("--iterations", type=int, default=60)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    cpu = cpu_info()
    print(f"CPU: {cpu['model']} ({cpu['cores']} cores; avx512_vnni={cpu['avx512_vnni']}, "
          f"avx_vnni={cpu['avx_vnni']})", flush=True)
    for run in args.runs:
        compare(run, precision=args.precision, batch_sizes=args.batch_sizes, iterations=args.iterations,
                threads=args.threads)


if __name__ == "__main__":
    main()
