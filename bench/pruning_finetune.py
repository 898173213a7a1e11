"""What pruning costs in accuracy: train, prune at p % and fine-tune, through gaitrun itself.

For cnn3d and cnn2d_bmvc (small widths, the built-in synthetic gait data: 10 subjects, 12
normal walks each, side view; 70/30 holdout by walk), this script writes a recipe to
``--workdir``, trains it with ``gaitrun run``, then prunes the finished run with
``gaitrun prune RUN --percentile P`` (scope ``per_layer`` unless ``--set`` says otherwise;
the fine-tune settings are the recipe defaults unless ``--set prune.finetune...``), and
prints from ``pruned/pruning.json`` the validation metrics of the unpruned model, of the
pruned model before fine-tuning and after it, and the points lost. Target: at most 1 point
of accuracy / rank-1 lost at p = 40.

Metrics: ``accuracy`` (per walk: the windows' majority), ``accuracy_window`` (per 5-frame
step window) and the k-NN rank-1 of the embedding (normal-walk gallery, per window). The
holdout has 40 walks and 120 windows: one walk is 2.5 points, one window 0.8 point, so
differences of a few points are within the noise of one run. ``--percentile 0`` is the
control: the same fine-tuning without pruning (the unpruned model simply trained further),
to tell what pruning costs from what the extra epochs give or take. Both models see optical
flow, as in Embedded-Gait: cnn3d clips of 25x60x60x2, cnn2d_bmvc stacks of 60x60x50.
TensorFlow's CPU Conv3D training is slow: cnn3d's 25 epochs need about 12 CPU-minutes.

    python bench/pruning_finetune.py [--models cnn3d cnn2d_bmvc] [--percentile 40]
        [--workdir DIR] [--reuse ARCH=RUN_FOLDER ...] [--set KEY=VALUE ...]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

DATA = """\
data:
  adapter: synthetic_gait
  params: {subjects: 10, views: [90], walks: {nm: 12}, frames: 40}
  modality: %(modality)s
  clip: {frames: %(frames)d, stride: 5, size: [%(size)d, %(size)d]}
augment:
  - shift: {max_px: 3}
"""
TRAIN = """\
model: {arch: %(arch)s, params: {width: %(width)g}}
train:
  optimizer: {name: adam, lr: %(lr)g}
  batch_size: %(batch)d
  epochs: %(epochs)d
  tensorboard: false
cv: {scheme: holdout, fraction: 0.3, group_by: sequence}
evaluate:
  metrics: [accuracy]
  knn: {k: 1, protocol: casia_b, exclude_identical_view: false}
"""
MODELS = {
    "cnn3d": dict(arch="cnn3d", modality="optical_flow", frames=25, size=60, width=0.125, lr=1e-3,
                  batch=8, epochs=25),
    "cnn2d_bmvc": dict(arch="cnn2d_bmvc", modality="optical_flow", frames=25, size=60, width=0.25,
                       lr=5e-4, batch=16, epochs=40),
}
METRICS = ("accuracy", "accuracy_window", "rank1_nm")
STAGES = ("before", "after_pruning", "after_finetune")


def recipe(arch: str) -> str:
    """The training recipe of ``arch`` (no prune section: ``gaitrun prune`` adds it)."""
    spec = MODELS[arch]
    return f"name: prune_ft_{arch}\nseed: 7\n" + DATA % spec + TRAIN % spec


def gaitrun(*args: str) -> dict[str, float]:
    """Run ``gaitrun ARGS`` (failing loudly); returns its wall and CPU seconds and the load."""
    exe = Path(sys.executable).parent / "gaitrun"
    before, start = resource.getrusage(resource.RUSAGE_CHILDREN), time.perf_counter()
    res = subprocess.run([str(exe), *args, "--quiet"], capture_output=True, text=True,
                         env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    if res.returncode != 0:
        raise SystemExit(f"gaitrun {' '.join(args)} failed:\n{res.stderr[-3000:]}")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"wall_s": time.perf_counter() - start, "cpu_s": cpu, "load": os.getloadavg()[0]}


def newest_run(artifacts: Path, name: str) -> Path:
    """The newest run folder of recipe ``name`` under ``artifacts``."""
    return max((artifacts / name).iterdir(), key=lambda p: p.stat().st_mtime)


def bench_model(arch: str, args: argparse.Namespace, work: Path) -> dict[str, Any]:
    """Train (unless reused), prune and fine-tune ``arch``; returns pruning.json plus costs."""
    costs = {}
    if arch in args.reuse:
        run = Path(args.reuse[arch])
    else:
        path = work / f"{arch}.yaml"
        path.write_text(recipe(arch))
        costs["train"] = gaitrun("run", str(path), "--artifacts", str(work / "art"))
        run = newest_run(work / "art", f"prune_ft_{arch}")
    overrides = [f"--set={kv}" for kv in ["prune.scope=per_layer", *args.set]]
    costs["prune"] = gaitrun("prune", str(run), "--percentile", f"{args.percentile:g}",
                             "--artifacts", str(work / "pruned"), *overrides)
    name = json.loads((run / "manifest.json").read_text())["name"]
    pruned = newest_run(work / "pruned", name)
    result = json.loads((pruned / "pruned" / "pruning.json").read_text())
    history = (run / "folds" / result["best_fold"] / "history.csv").read_text().splitlines()
    return {"arch": arch, "run": str(run), "pruned_run": str(pruned), "costs": costs,
            "epochs": len(history) - 1, **result}


def print_result(r: dict[str, Any]) -> None:
    report = r["report"]
    totals, settings = report["totals"], report["settings"]
    print(f"\n{r['arch']}: trained {r['epochs']} epochs ({r['run']}); pruned {r['pruned_run']}")
    print(f"  p={r['percentile']:g} scope {settings['scope']} granularity {settings['granularity']}; "
          f"fine-tune {settings['finetune']}")
    print("  kept " + ", ".join(f"{n} {v['filters_after']}/{v['filters_before']}"
                                for n, v in report["layers"].items())
          + "; params {:.3f}, FLOPs {:.3f} of unpruned".format(
              *(totals[k]["after"] / totals[k]["before"] for k in ("params", "flops"))))
    for stage, cost in r["costs"].items():
        print(f"  {stage}: {cost['wall_s']:.0f} s wall, {cost['cpu_s']:.0f} s CPU, load {cost['load']:.2f}")
    print(f"  {'metric':<16} {'unpruned':>9} {'pruned':>9} {'finetuned':>9} {'lost (points)':>14}")
    for metric in METRICS:
        values = [r[stage]["mean"].get(metric) for stage in STAGES]
        if None in values:
            continue
        cells = " ".join(f"{100 * v:>9.1f}" for v in values)
        print(f"  {metric:<16} {cells} {100 * (values[0] - values[2]):>14.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", choices=list(MODELS), default=list(MODELS))
    parser.add_argument("--percentile", type=float, default=40.0)
    parser.add_argument("--workdir", type=Path, default=None, help="default: a new temporary folder")
    parser.add_argument("--reuse", nargs="*", default=[], metavar="ARCH=RUN",
                        help="prune this finished run instead of training ARCH")
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                        help="overrides for 'gaitrun prune', e.g. prune.finetune.epochs=10")
    args = parser.parse_args()
    args.reuse = dict(item.split("=", 1) for item in args.reuse)
    work = args.workdir or Path(tempfile.mkdtemp(prefix="pruning_finetune_"))
    work.mkdir(parents=True, exist_ok=True)
    print(f"work folder {work}; load average at start {os.getloadavg()[0]:.2f}", flush=True)
    for arch in args.models:
        print_result(bench_model(arch, args, work))
        sys.stdout.flush()


if __name__ == "__main__":
    main()
