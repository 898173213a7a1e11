"""Overhead of a Ray Tune sweep, in one run on this machine: N short digits trials with
``max_concurrent`` C on a local Ray that gaitrun starts. Target: wall time <= 1.25 x the ideal.

The ideal is the sum of the trials' own durations / C. Each trial's duration is taken in its
Ray actor, from the start of the trial function to its final result: starting the trial's work
process (``python -m gaitrun.sweep.work``: a trial is an ordinary gaitrun run in a process of
its own, as if run by hand), loading the recipe, TensorFlow's import, all stages and the final
figures. What the ideal leaves out is the sweep's machinery: starting Ray and its actors,
Tune's scheduling and the result files. The durations are measured while C trials share the
CPUs, so CPU contention is in the ideal, not counted as overhead (a trial timed alone
beforehand would be faster than any trial of the sweep on a shared 2-core machine, making
"alone / C" an ideal no parallel run reaches).

Also reports the peak resident memory of the driver (this process), of the largest Ray
process it started, and of every trial (its work process's peak), in trial order: it must not grow.

    python bench/sweep_overhead.py [--trials 8] [--concurrent 2] [--epochs 2]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import resource
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

RECIPE = """\
name: sweep_overhead
seed: 1
data: {{adapter: digits, modality: rgb, clip: {{frames: 1, size: [8, 8]}}, cache: memory}}
model: {{arch: simple_cnn, params: {{width: 0.25}}}}
train: {{epochs: {epochs}, batch_size: 64}}
cv: {{scheme: holdout, fraction: 0.3, group_by: index}}
search:
  space: {{train.optimizer.lr: {{grid: {lrs}}}}}
  algorithm: grid
  num_samples: 1
  max_concurrent: {concurrent}
  resources: {{cpu: 1}}
  metric: accuracy
  mode: max
"""


def _mb(kib: int) -> float:
    return round(kib / 1024, 1)


def run(trials: int, concurrent: int, epochs: int) -> dict:
    from gaitrun.recipe import load_recipe
    from gaitrun.sweep import run_sweep

    lrs = [round(0.0005 * (i + 1), 4) for i in range(trials)]
    with tempfile.TemporaryDirectory() as tmp:
        recipe = Path(tmp) / "sweep_overhead.yaml"
        recipe.write_text(RECIPE.format(epochs=epochs, lrs=lrs, concurrent=concurrent))
        loaded = load_recipe(recipe)
        start = time.perf_counter()
        code = run_sweep(loaded, artifacts=Path(tmp) / "art", quiet=True)
        wall = time.perf_counter() - start
        table = next(Path(tmp).glob("art/sweep_overhead/*-sweep/trials.csv"))
        rows = list(csv.DictReader(table.open()))
    durations = [float(r["duration_s"]) for r in rows]
    ideal = sum(durations) / concurrent
    return {"exit_code": code, "trials": len(rows), "done": sum(r["status"] == "done" for r in rows),
            "concurrent": concurrent, "wall_s": round(wall, 1), "sum_trial_s": round(sum(durations), 1),
            "ideal_s": round(ideal, 1), "ratio": round(wall / ideal, 3), "target_ratio": 1.25,
            "trial_s": durations, "trial_peak_rss_mb": [float(r["peak_rss_mb"]) for r in rows],
            "driver_peak_rss_mb": _mb(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss),
            "ray_process_peak_rss_mb": _mb(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=8)
    parser.add_argument("--concurrent", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=2)
    args = parser.parse_args()
    result = run(args.trials, args.concurrent, args.epochs)
    print(json.dumps(result, indent=2))
    verdict = "meets" if result["ratio"] <= result["target_ratio"] else "misses"
    print(f"wall {result['wall_s']} s vs ideal {result['ideal_s']} s (sum of trial times / "
          f"{args.concurrent}): {result['ratio']}x, {verdict} the {result['target_ratio']}x target")


if __name__ == "__main__":
    main()
