"""What pruning costs in accuracy: train, prune at p % and fine-tune, through gaitrun itself.

For cnn3d and cnn2d_bmvc (small widths, the built-in synthetic gait data: 10 subjects, 12
normal walks each, side view; 70/30 holdout by walk), this script writes a recipe to
``--workdir`` for each of ``--seeds``, trains it with ``gaitrun run`` (Adam, cosine decay),
then prunes the finished run with ``gaitrun prune RUN --set prune.percentile=P`` (scope ``per_layer``
unless ``--set`` says otherwise; the fine-tune settings are gaitrun's defaults unless
``--set prune.finetune...``), and prints from ``pruned/pruning.json`` the validation metrics
of the unpruned model, of the pruned model before fine-tuning and after it, and the points
lost, per seed and their mean. Target: at most 1 point of accuracy / rank-1 lost at p = 40.

Metrics: ``accuracy`` (per walk: the windows' majority), ``accuracy_window`` (per 5-frame
step window) and the k-NN rank-1 of the embedding (normal-walk gallery, per window). By
default the holdout has 40 walks and 120 windows: one walk is 2.5 points, one window 0.8
point, so differences of a few points are within the noise of one run. ``--walks 30 --holdout
0.5`` holds out 150 walks (450 windows) and trains on as many; the means over seeds are printed
with their standard error. ``--percentile 0`` is the control: the same fine-tuning without
pruning (the unpruned model simply trained further), to tell what pruning costs from what the
extra epochs give or take; ``--control`` runs it beside every pruned run. Both models see optical
flow, as in Embedded-Gait: cnn3d clips of 25x60x60x2, cnn2d_bmvc stacks of 60x60x50.
Both train long enough to converge (a model still learning gains from any extra epochs, which
hides what pruning costs); TensorFlow's CPU Conv3D training is slow: cnn3d's 60 epochs need
about half an hour on 2 cores.

    python bench/pruning_finetune.py [--models cnn3d cnn2d_bmvc] [--percentile 40] [--seeds 1 2 3]
        [--walks 12] [--holdout 0.3] [--epochs N] [--width W] [--control] [--workdir DIR]
        [--reuse ARCH:SEED=RUN_FOLDER ...] [--set KEY=VALUE ...]
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

import numpy as np

DATA = """\
data:
  adapter: synthetic_gait
  params: {subjects: 10, views: [90], walks: {nm: %(walks)d}, frames: 40}
  modality: %(modality)s
  clip: {frames: %(frames)d, stride: 5, size: [%(size)d, %(size)d]}
augment:
  - shift: {max_px: 3}
"""
TRAIN = """\
model: {arch: %(arch)s, params: {width: %(width)g}}
train:
  optimizer: {name: adam, lr: %(lr)g}
  schedule: {name: cosine, min_lr: 0}
  batch_size: %(batch)d
  epochs: %(epochs)d
  tensorboard: false
cv: {scheme: holdout, fraction: %(holdout)g, group_by: sequence}
evaluate:
  metrics: [accuracy]
  knn: {k: 1, protocol: casia_b, exclude_identical_view: false}
"""
MODELS = {
    "cnn3d": dict(arch="cnn3d", modality="optical_flow", frames=25, size=60, width=0.125, lr=1e-3,
                  batch=8, epochs=60),
    "cnn2d_bmvc": dict(arch="cnn2d_bmvc", modality="optical_flow", frames=25, size=60, width=0.25,
                       lr=1e-3, batch=16, epochs=100),
}
METRICS = ("accuracy", "accuracy_window", "rank1_nm")
STAGES = ("before", "after_pruning", "after_finetune")


def recipe(arch: str, seed: int, *, walks: int, holdout: float, epochs: int | None,
           width: float | None = None) -> str:
    """The training recipe of ``arch`` (no prune section: ``gaitrun prune`` adds it); ``epochs``
    and ``width`` None keep the model's own values from ``MODELS``."""
    spec = {**MODELS[arch], "walks": walks, "holdout": holdout}
    spec.update({k: v for k, v in (("epochs", epochs), ("width", width)) if v is not None})
    return f"name: prune_ft_{arch}_s{seed}\nseed: {seed}\n" + DATA % spec + TRAIN % spec


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


def train(arch: str, seed: int, args: argparse.Namespace, work: Path) -> tuple[Path, dict[str, Any]]:
    """The finished training run of ``arch`` at ``seed`` (reused or trained now) and its cost."""
    if f"{arch}:{seed}" in args.reuse:
        return Path(args.reuse[f"{arch}:{seed}"]), {}
    path = work / f"{arch}_s{seed}.yaml"
    path.write_text(recipe(arch, seed, walks=args.walks, holdout=args.holdout, epochs=args.epochs,
                                width=args.width))
    cost = gaitrun("run", str(path), "--artifacts", str(work / "art"))
    return newest_run(work / "art", f"prune_ft_{arch}_s{seed}"), cost


def prune(run: Path, percentile: float, args: argparse.Namespace, work: Path) -> dict[str, Any]:
    """``gaitrun prune RUN --set prune.percentile=P`` (fine-tuning included); pruning.json plus its cost."""
    overrides = [f"--set={kv}" for kv in [f"prune.percentile={percentile:g}", "prune.scope=per_layer", *args.set]]
    out = work / f"pruned_p{percentile:g}"
    cost = gaitrun("prune", str(run), "--artifacts", str(out), *overrides)
    name = json.loads((run / "manifest.json").read_text())["name"]
    pruned = newest_run(out, name)
    return {**json.loads((pruned / "pruned" / "pruning.json").read_text()), "pruned_run": str(pruned), "cost": cost}


def bench_model(arch: str, seed: int, args: argparse.Namespace, work: Path) -> dict[str, Any]:
    """Train (unless reused), prune and fine-tune ``arch`` (and the p = 0 control with --control)."""
    run, cost = train(arch, seed, args, work)
    results = {"pruned": prune(run, args.percentile, args, work)}
    if args.control:
        results["control"] = prune(run, 0.0, args, work)
    history = (run / "folds" / results["pruned"]["best_fold"] / "history.csv").read_text().splitlines()
    return {"arch": arch, "seed": seed, "run": str(run), "train_cost": cost, "epochs": len(history) - 1, **results}


def lost(result: dict[str, Any], metric: str) -> tuple[float, float, float] | None:
    """(unpruned, fine-tuned, points lost) of ``metric``, or None when the run has no such metric."""
    before, after = (result[stage]["mean"].get(metric) for stage in ("before", "after_finetune"))
    return None if before is None or after is None else (100 * before, 100 * after, 100 * (before - after))


def print_result(r: dict[str, Any]) -> None:
    report = r["pruned"]["report"]
    totals, settings = report["totals"], report["settings"]
    print(f"\n{r['arch']} seed {r['seed']}: trained {r['epochs']} epochs ({r['run']})")
    print(f"  p={r['pruned']['percentile']:g} scope {settings['scope']} granularity {settings['granularity']}; "
          f"fine-tune {r['pruned'].get('finetune', settings['finetune'])}")
    print("  kept " + ", ".join(f"{n} {v['filters_after']}/{v['filters_before']}"
                                for n, v in report["layers"].items())
          + "; params {:.3f}, FLOPs {:.3f} of unpruned".format(
              *(totals[k]["after"] / totals[k]["before"] for k in ("params", "flops"))))
    costs = {"train": r["train_cost"], **{k: r[k]["cost"] for k in ("pruned", "control") if k in r}}
    for stage, cost in costs.items():
        if cost:
            print(f"  {stage}: {cost['wall_s']:.0f} s wall, {cost['cpu_s']:.0f} s CPU, load {cost['load']:.2f}")
    print(f"  {'metric':<16} {'unpruned':>9} {'pruned':>9} {'finetuned':>9} {'lost':>6}"
          + (f" {'control':>9} {'lost':>6}" if "control" in r else ""))
    for metric in METRICS:
        values = [r["pruned"][stage]["mean"].get(metric) for stage in STAGES]
        if None in values:
            continue
        line = f"  {metric:<16} " + " ".join(f"{100 * v:>9.1f}" for v in values) + f" {100 * (values[0] - values[2]):>6.1f}"
        if "control" in r:
            control = r["control"]["after_finetune"]["mean"][metric]
            line += f" {100 * control:>9.1f} {100 * (control - values[2]):>6.1f}"
        print(line)


def mean_error(values: list[float]) -> str:
    """``mean ± standard error`` of ``values`` (no error for a single value)."""
    if len(values) < 2:
        return f"{np.mean(values):>6.2f}"
    return f"{np.mean(values):>6.2f} ± {np.std(values, ddof=1) / np.sqrt(len(values)):.2f} (s.e.)"


def print_means(rows: list[dict[str, Any]]) -> None:
    """Points lost per architecture and metric, mean over the seeds (and against the control)."""
    print("\nmean points lost after fine-tuning (unpruned - pruned; 'vs control': p = 0 fine-tuned alike - pruned)")
    for arch in dict.fromkeys(r["arch"] for r in rows):
        mine = [r for r in rows if r["arch"] == arch]
        for metric in METRICS:
            values = [lost(r["pruned"], metric) for r in mine]
            if None in values:
                continue
            points = [v[2] for v in values]
            line = (f"  {arch:<11} {metric:<16} {mean_error(points)} over seeds "
                    f"{[r['seed'] for r in mine]} (each: {', '.join(f'{v[2]:.1f}' for v in values)})")
            if all("control" in r for r in mine):
                vs = [100 * (r["control"]["after_finetune"]["mean"][metric] - r["pruned"]["after_finetune"]["mean"][metric])
                      for r in mine]
                line += f"; vs control {mean_error(vs)} (each: {', '.join(f'{v:.1f}' for v in vs)})"
            print(line)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", choices=list(MODELS), default=list(MODELS))
    parser.add_argument("--percentile", type=float, default=40.0)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--control", action="store_true", help="also fine-tune each model unpruned (p = 0)")
    parser.add_argument("--walks", type=int, default=12, help="normal walks per subject (default 12)")
    parser.add_argument("--holdout", type=float, default=0.3, help="fraction of the walks held out (default 0.3)")
    parser.add_argument("--epochs", type=int, default=None, help="training epochs (default: per model, above)")
    parser.add_argument("--width", type=float, default=None,
                        help="model width (default: per model, above; 1.0 is the published size)")
    parser.add_argument("--workdir", type=Path, default=None, help="default: a new temporary folder")
    parser.add_argument("--reuse", nargs="*", default=[], metavar="ARCH:SEED=RUN",
                        help="prune this finished run instead of training ARCH at SEED")
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                        help="overrides for 'gaitrun prune', e.g. prune.finetune.epochs=10")
    args = parser.parse_args()
    args.reuse = dict(item.split("=", 1) for item in args.reuse)
    work = args.workdir or Path(tempfile.mkdtemp(prefix="pruning_finetune_"))
    work.mkdir(parents=True, exist_ok=True)
    print(f"work folder {work}; load average at start {os.getloadavg()[0]:.2f}", flush=True)
    rows = []
    for arch in args.models:
        for seed in args.seeds:
            rows.append(bench_model(arch, seed, args, work))
            print_result(rows[-1])
            sys.stdout.flush()
    print_means(rows)


if __name__ == "__main__":
    main()
