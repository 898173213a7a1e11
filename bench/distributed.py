"""1 vs 2 Ray Train workers on this machine: the same digits recipe and global batch, trained by
``gaitrun run`` in one process, with ``train.distributed: {workers: 1, cpus_per_worker: C}``
and with ``{workers: 2, cpus_per_worker: C / 2}`` (C: this machine's cores), in one run.

Per training: the epoch time (mean of ``epoch_time_s`` in ``history.csv`` over epochs 2..N, so
the first epoch's tracing is left out), samples/s (steps per epoch x global batch / epoch
time), the run's wall time (with Ray's start and each worker's TensorFlow import) and the final
accuracy (``metrics.json``, the held-out 20 %).

The communication overhead is measured apart, by a probe on a local Ray with the same worker
layouts: every worker loads the trained model twice, one copy under
``MultiWorkerMirroredStrategy`` and one outside it, and times on a fixed local batch of
global batch / workers samples, in interleaved rounds (median):

- *step*: gaitrun's distributed step (``train.replica.make_train_step``): forward, backward and
  the optimizer's update, whose gradients the strategy all-reduces across workers;
- *compute*: the same step on the copy outside the strategy (no collective), while the other
  workers do the same, so CPU sharing is as in the real step;
- *all-reduce*: the strategy's all-reduce alone, of tensors shaped like the gradients.

The communication per step is step - compute; per epoch it is that x steps per epoch, also
given as a share of the epoch time measured in the training above. With one worker the same
difference is the strategy's own cost (a control: there is nobody to talk to).

    python bench/distributed.py [--epochs 8] [--batch 32] [--steps 40] [--rounds 5] [--out result.json]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from recipes import machine  # bench/recipes.py: CPU model, VNNI flags, load

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

RECIPE = """\
name: bench_distributed
seed: 1
data: {{adapter: digits, modality: rgb, clip: {{frames: 1, size: [8, 8]}}, cache: disk}}
model: {{arch: simple_cnn, params: {{width: 0.5}}}}
train: {{epochs: {epochs}, batch_size: {batch}, optimizer: {{name: adam, lr: 0.003}}, validate_every: {epochs}}}
cv: {{scheme: holdout, fraction: 0.2, group_by: index}}
"""


def train(recipe: Path, batch: int, root: Path, name: str, distributed: str | None) -> dict[str, Any]:
    """One ``gaitrun run``; its timings and accuracy."""
    argv = [str(Path(sys.executable).parent / "gaitrun"), "run", str(recipe), "--artifacts", str(root / name), "--quiet"]
    if distributed:
        argv += ["--set", f"train.distributed={distributed}"]
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}  # a private local Ray
    load0, start = os.getloadavg()[0], time.perf_counter()
    res = subprocess.run(argv, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - start
    if res.returncode != 0:
        sys.exit(f"{name}: gaitrun failed (exit {res.returncode}): {res.stderr.strip()[-1500:]}")
    run = next((root / name).glob("*/*/manifest.json")).parent
    rows = list(csv.DictReader((run / "folds" / "0" / "history.csv").open()))
    fold = json.loads((run / "folds" / "0" / "metrics.json").read_text())
    steps = -(-fold["train_samples"] // batch)
    epoch = statistics.mean(float(r["epoch_time_s"]) for r in rows[1:])
    return {"name": name, "epoch_s": epoch, "samples_s": steps * batch / epoch, "steps": steps, "wall_s": wall,
            "accuracy": fold["classification"]["accuracy"], "load": [load0, os.getloadavg()[0]], "run": str(run)}


def _probe_loop(config: dict[str, Any]) -> None:
    """A Ray Train worker: times step, compute and all-reduce (see the module's docstring)."""
    import numpy as np
    import ray.train
    import tensorflow as tf

    threads = max(1, int(config["cpus"]))
    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(threads)
    import keras

    from gaitrun.keras_io import load_model
    from gaitrun.train.replica import make_train_step

    rank = ray.train.get_context().get_world_rank()
    strategy = tf.distribute.MultiWorkerMirroredStrategy()
    local = config["batch"] // strategy.num_replicas_in_sync

    def fresh() -> Any:
        model = load_model(config["model"])
        model.compile(optimizer=keras.optimizers.Adam(1e-3), loss=keras.losses.SparseCategoricalCrossentropy())
        model.optimizer.build(model.trainable_variables)
        return model

    with strategy.scope():
        shared = fresh()
    alone = fresh()
    rng = np.random.default_rng(rank)
    x = rng.random((local, *shared.input_shape[1:]), dtype=np.float32)
    y = rng.integers(0, shared.output_shape[-1], local)
    ds = tf.data.Dataset.from_tensors((x, y)).repeat()
    default = tf.distribute.get_strategy()
    step = make_train_step(strategy, shared, loss=shared.loss, loss_weights=None, global_batch=config["batch"],
                           accuracy=True)
    compute = make_train_step(default, alone, loss=alone.loss, loss_weights=None, global_batch=local, accuracy=True)
    its = (iter(strategy.distribute_datasets_from_function(lambda _: ds)),
           iter(default.distribute_datasets_from_function(lambda _: ds)))
    grads = [tf.ones_like(v) for v in shared.trainable_variables]

    @tf.function
    def all_reduce() -> Any:
        return strategy.run(lambda: tf.distribute.get_replica_context().all_reduce(tf.distribute.ReduceOp.SUM, grads))

    kinds = {"step": lambda: step(its[0]), "compute": lambda: compute(its[1]), "all_reduce": all_reduce}
    times: dict[str, list[float]] = {k: [] for k in kinds}
    for _ in range(3):  # tracing
        for fn in kinds.values():
            fn()
    for _ in range(config["rounds"]):
        for kind, fn in kinds.items():
            all_reduce()  # a barrier: every worker starts the block together
            start = time.perf_counter()
            for _ in range(config["steps"]):
                out = fn()
            tf.nest.map_structure(lambda t: t.numpy() if hasattr(t, "numpy") else t, out)
            times[kind].append((time.perf_counter() - start) / config["steps"])
    Path(config["out"], f"rank-{rank}.json").write_text(json.dumps({k: statistics.median(v) for k, v in times.items()}))
    ray.train.report({"rank": rank})


def probe(workers: int, cpus: float, model: Path, batch: int, args: argparse.Namespace) -> dict[str, float]:
    """Median seconds per step of each kind, averaged over the workers."""
    from ray.train import RunConfig, ScalingConfig
    from ray.train.tensorflow import TensorflowTrainer

    with tempfile.TemporaryDirectory(prefix="bench-dist-probe-") as tmp:
        config = {"model": str(model), "batch": batch, "cpus": cpus, "steps": args.steps, "rounds": args.rounds,
                  "out": tmp}
        TensorflowTrainer(_probe_loop, train_loop_config=config,
                          scaling_config=ScalingConfig(num_workers=workers, resources_per_worker={"CPU": cpus}),
                          run_config=RunConfig(name=f"probe-{workers}", storage_path=str(Path(tmp) / "ray"))).fit()
        ranks = [json.loads(Path(tmp, f"rank-{r}.json").read_text()) for r in range(workers)]
    return {k: statistics.mean(r[k] for r in ranks) for k in ranks[0]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--batch", type=int, default=32, help="the global batch (default 32)")
    parser.add_argument("--steps", type=int, default=40, help="probe: steps per timed block (default 40)")
    parser.add_argument("--rounds", type=int, default=5, help="probe: interleaved rounds (default 5)")
    parser.add_argument("--out", type=Path, default=None, help="also write the results as JSON")
    args = parser.parse_args()
    cores = os.cpu_count() or 2
    if args.batch % 2:
        parser.error("--batch must be even (it is split over 2 workers)")
    print(f"machine: {machine()}", flush=True)
    root = Path(tempfile.mkdtemp(prefix="bench-distributed-"))
    os.environ["GAITRUN_CACHE"] = str(root / "cache")  # shared by the runs: data generated once
    recipe = root / "recipe.yaml"
    recipe.write_text(RECIPE.format(epochs=args.epochs, batch=args.batch))
    layouts = [("one process", None, None),
               (f"1 worker x {cores} CPU", f"{{workers: 1, cpus_per_worker: {cores}}}", (1, cores)),
               (f"2 workers x {cores / 2:g} CPU", f"{{workers: 2, cpus_per_worker: {cores / 2:g}}}", (2, cores / 2))]
    runs = []
    for name, dist, _ in layouts:
        runs.append(train(recipe, args.batch, root, name.replace(" ", "_"), dist))
        print(f"{name}: {runs[-1]['epoch_s']:.3f} s/epoch, accuracy {runs[-1]['accuracy']:.3f}", flush=True)
    import ray

    ray.init(address="local", num_cpus=cores, include_dashboard=False, log_to_driver=False)
    try:
        model = Path(runs[0]["run"]) / "folds" / "0" / "model.keras"
        probes = [probe(*layout, model, args.batch, args) for _, _, layout in layouts[1:]]
    finally:
        ray.shutdown()
    report(layouts, runs, probes, args)
    if args.out:
        args.out.write_text(json.dumps({"machine": machine(), "runs": runs, "probes": probes}, indent=1))
    return 0


def report(layouts: list, runs: list[dict], probes: list[dict], args: argparse.Namespace) -> None:
    print(f"\ndigits, simple_cnn width 0.5, holdout 20 %, {args.epochs} epochs, global batch {args.batch}, "
          f"{runs[0]['steps']} steps per epoch\n")
    print("| | epoch time (epochs 2-N, mean) | samples/s | run wall time | accuracy | load (start-end) |")
    print("|---|---|---|---|---|---|")
    for (name, _, _), r in zip(layouts, runs, strict=True):
        print(f"| {name} | {r['epoch_s']:.3f} s | {r['samples_s']:.0f} | {r['wall_s']:.1f} s | {r['accuracy']:.3f} "
              f"| {r['load'][0]:.2f}-{r['load'][1]:.2f} |")
    one, two = runs[1], runs[2]
    print(f"\n2 workers / 1 worker: epoch time {two['epoch_s'] / one['epoch_s']:.2f}x, samples/s "
          f"{two['samples_s'] / one['samples_s']:.2f}x, accuracy {100 * (two['accuracy'] - one['accuracy']):+.1f} points; "
          f"2 workers / one process: epoch time {two['epoch_s'] / runs[0]['epoch_s']:.2f}x\n")
    print("| per step (median of rounds, ms) | step | compute alone | all-reduce alone | step - compute | "
          "per epoch (x steps) | share of the epoch |")
    print("|---|---|---|---|---|---|---|")
    for (name, _, _), p, r in zip(layouts[1:], probes, runs[1:], strict=True):
        comm = p["step"] - p["compute"]
        print(f"| {name} | {1e3 * p['step']:.2f} | {1e3 * p['compute']:.2f} | {1e3 * p['all_reduce']:.2f} | "
              f"{1e3 * comm:.2f} | {comm * r['steps']:.3f} s | {100 * comm * r['steps'] / r['epoch_s']:.0f} % |")
    print(f"\nload at the end: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f}")


if __name__ == "__main__":
    sys.exit(main())
