"""How INT8 calibration changes a finished run's predictions: for each run folder given, its
exported FP32 ONNX models (``export/variants/{pruned,unpruned}-fp32``) are quantized with
gaitrun's own ``quantize_int8`` once per ``--methods`` entry (``METHOD:WINDOWS``, e.g.
``minmax:128``, ``percentile:64``; windows drawn from the best fold's training split, as the
export stage draws them), and each INT8 model is compared with its FP32 model on the run's
evaluation windows: windows and sequences whose top class changed, the mean absolute change of
a probability, accuracy per sequence, and the time quantization took.

``--stride`` sets the step between evaluation windows (default: the recipe's ``clip.stride``);
a small step gives more windows per sequence, so the comparison has more to go on.

    python bench/int8_calibration.py RUN [RUN ...] [--model pruned|unpruned] [--stride 5]
        [--methods minmax:128 percentile:128 percentile:64]

The figures in README "Deployment" come from the main job's three seeds:

    python bench/recipes.py --seeds 3 --recipe 3dcnn_prune40 --artifacts /tmp/seeds
    python bench/int8_calibration.py /tmp/seeds/3dcnn_prune40/* --stride 5
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parent))

from export import _context  # noqa: E402  (bench/export.py: a finished run as a RunContext)


def compare(run: Path, *, model: str, stride: int | None, methods: list[str]) -> list[dict]:
    import numpy as np
    import onnx

    from gaitrun.data.pipeline import eval_dataset
    from gaitrun.deploy_data import best_fold, calibration
    from gaitrun.export.parity import run_onnx
    from gaitrun.export.quantize import quantize_int8
    from gaitrun.stages.data import prepared
    from gaitrun.tradeoff import sequence_accuracy
    from gaitrun.train.evaluation import per_sample

    ctx = _context(run)
    prep, fold, recipe = prepared(ctx), best_fold(ctx), ctx.recipe
    clip = recipe.data.clip
    ds, owners = eval_dataset(prep.store, fold.val, None, kind=prep.kind, frames=clip.frames,
                              stride=stride or clip.stride, pad=clip.pad, batch_size=256)
    x = np.concatenate([b.numpy() for b in ds]).astype(np.float32)
    src = run / "export" / "variants" / f"{model}-fp32" / "model.fp32.onnx"
    name = onnx.load(str(src)).graph.input[0].name
    fp32 = run_onnx(src, x)
    seq32, _ = per_sample(fp32, owners)
    rows = []
    with tempfile.TemporaryDirectory() as work:
        for entry in methods:
            method, n = entry.split(":")
            cal = calibration(prep, fold.train, recipe, int(n))[0]
            out = Path(work) / f"{method}-{n}.onnx"
            start = time.perf_counter()
            quantize_int8(src, out, calibration=cal, input_name=name, method=method)
            took = time.perf_counter() - start
            int8 = run_onnx(out, x)
            seq8, _ = per_sample(int8, owners)
            rows.append({"run": run.name, "model": model, "calibration": entry, "windows": len(x),
                         "window_changes": int(np.sum(int8.argmax(-1) != fp32.argmax(-1))),
                         "sequences": len(seq32),
                         "sequence_changes": int(np.sum(seq8.argmax(-1) != seq32.argmax(-1))),
                         "mean_abs_change": round(float(np.abs(int8 - fp32).mean()), 4),
                         "accuracy_fp32": round(sequence_accuracy(fp32, owners, ctx), 4),
                         "accuracy_int8": round(sequence_accuracy(int8, owners, ctx), 4),
                         "quantize_s": round(took, 1)})
    return rows


def main() -> None:
    from gaitrun.bench import cpu_info

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("runs", nargs="+", type=Path)
    ap.add_argument("--model", choices=("pruned", "unpruned"), default="pruned")
    ap.add_argument("--stride", type=int, default=None)
    ap.add_argument("--methods", nargs="+", default=["minmax:128", "percentile:128", "percentile:64"])
    args = ap.parse_args()
    cpu = cpu_info()
    print(f"CPU: {cpu['model']} ({cpu['cores']} cores; avx512_vnni={cpu['avx512_vnni']}, "
          f"avx_vnni={cpu['avx_vnni']})", flush=True)
    for run in args.runs:
        for row in compare(run, model=args.model, stride=args.stride, methods=args.methods):
            print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
