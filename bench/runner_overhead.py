"""Runner overhead: epoch time of a gaitrun training run against a minimal hand-written Keras
script with the same model (``simple_cnn``), the same tf.data pipeline
(``gaitrun.data.pipeline.train_dataset`` / ``eval_dataset`` over the same ClipStore), the same
fold, optimizer and batch size, in one process.

gaitrun's figure is ``epoch_time_s`` from ``folds/0/history.csv`` (epoch begin -> end, with
validation); the script's is timed the same way. Both also report the wall time between two
epoch ends, which includes gaitrun's per-epoch checkpoint. Runs alternate (script, gaitrun,
script, gaitrun ...) so that a change in machine load hits both. Compared: the median epoch
time, first epoch of every run excluded (tracing). Target: gaitrun / script <= 1.05.

    python bench/runner_overhead.py [--epochs 6] [--batch 32] [--repeats 2] [--size 32] [--no-tensorboard]
"""

from __future__ import annotations

import argparse
import csv
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

RECIPE = """\
name: runner_overhead
seed: 0
data:
  adapter: digits
  modality: rgb
  clip: {{frames: 1, size: [{size}, {size}]}}
  cache_dir: {cache}
model: {{arch: simple_cnn, params: {{width: 0.5}}}}
train:
  optimizer: {{name: adam, lr: 0.001}}
  batch_size: {batch}
  epochs: {epochs}
  tensorboard: {tensorboard}
cv: {{scheme: holdout, fraction: 0.2, group_by: null}}
evaluate: {{metrics: [accuracy], plots: false}}
"""


def _epoch_ends() -> Any:
    """A gaitrun run callback that stamps the wall time of every epoch end."""
    from gaitrun.callbacks import Callback

    class EpochEnds(Callback):
        def __init__(self) -> None:
            self.stamps = [time.perf_counter()]

        def on_fold_start(self, fold: str, total_epochs: int) -> None:
            self.stamps = [time.perf_counter()]

        def on_epoch_end(self, fold: str, epoch: int, logs: dict[str, float]) -> None:
            self.stamps.append(time.perf_counter())

    return EpochEnds()


def run_gaitrun(recipe_file: Path, artifacts: Path, overrides: tuple[str, ...] = ()) -> tuple[Any, list[float], list[float]]:
    """Run the recipe through gaitrun's stages; (context, epoch_time_s, wall between epoch ends)."""
    from gaitrun.callbacks import CallbackList
    from gaitrun.recipe import load_recipe
    from gaitrun.registry import registries
    from gaitrun.runfolder import RunFolder
    from gaitrun.stages import RunContext, plan, run_stages

    loaded = load_recipe(recipe_file, list(overrides))
    folder = RunFolder.create(loaded, plan(loaded.recipe), artifacts=artifacts)
    ends = _epoch_ends()
    ctx = RunContext(loaded=loaded, folder=folder, regs=registries(), callbacks=CallbackList([ends]))
    run_stages(ctx)
    with open(folder.file("folds", "0", "history.csv")) as fh:
        epoch_times = [float(row["epoch_time_s"]) for row in csv.DictReader(fh)]
    return ctx, epoch_times, _gaps(ends.stamps)


def _gaps(stamps: list[float]) -> list[float]:
    return [b - a for a, b in zip(stamps, stamps[1:], strict=False)]


def run_script(ctx: Any, epochs: int) -> tuple[list[float], list[float]]:
    """The hand-written script: build, compile, fit on gaitrun's datasets; (epoch times, gaps)."""
    import math

    import keras

    from gaitrun.data.pipeline import eval_dataset, train_dataset
    from gaitrun.stages.data import prepared
    from gaitrun.train.splits import make_splits

    recipe, prep = ctx.recipe, prepared(ctx)
    fold = make_splits(ctx, prep.samples)[0][0]
    keras.utils.set_random_seed(recipe.seed)
    model = ctx.regs["architectures"].get("simple_cnn").impl("build")(
        input_shape=prep.input_shape, num_classes=len(prep.class_names), params=recipe.model.params)
    model.compile(optimizer=keras.optimizers.Adam(recipe.train.optimizer.lr),
                  loss=keras.losses.SparseCategoricalCrossentropy(), metrics=["accuracy"])
    common = {"kind": prep.kind, "frames": recipe.data.clip.frames, "pad": recipe.data.clip.pad,
              "batch_size": recipe.train.batch_size}
    train_ds = train_dataset(prep.store, fold.train, prep.labels, seed=recipe.seed, **common)
    val_ds, _ = eval_dataset(prep.store, fold.val, prep.labels, stride=None, **common)
    timer = _epoch_timer()
    model.fit(train_ds, steps_per_epoch=math.ceil(len(fold.train) / recipe.train.batch_size),
              epochs=epochs, validation_data=val_ds, verbose=0, shuffle=False, callbacks=[timer])
    keras.backend.clear_session()
    return timer.times, _gaps(timer.stamps)


def _epoch_timer() -> Any:
    """A Keras callback: epoch begin -> end seconds, and the wall time of every epoch end."""
    import keras

    class EpochTimer(keras.callbacks.Callback):
        def __init__(self) -> None:
            super().__init__()
            self.times: list[float] = []
            self.stamps = [time.perf_counter()]

        def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
            self.started = time.perf_counter()

        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            self.stamps.append(time.perf_counter())
            self.times.append(self.stamps[-1] - self.started)

    return EpochTimer()


def _median_after_first(runs: list[list[float]]) -> float:
    return statistics.median(t for run in runs for t in run[1:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--size", type=int, default=32, help="digit image side in pixels")
    parser.add_argument("--repeats", type=int, default=2, help="runs of each, alternating")
    parser.add_argument("--no-tensorboard", action="store_true", help="gaitrun without its TensorBoard logs")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="gaitrun-overhead-"))
    recipe_file = work / "runner_overhead.yaml"
    recipe_file.write_text(RECIPE.format(size=args.size, cache=work / "cache", batch=args.batch,
                                         epochs=args.epochs, tensorboard=str(not args.no_tensorboard).lower()))
    # a one-epoch run builds the store and imports everything; its context (data, fold) serves the script
    ctx, _, _ = run_gaitrun(recipe_file, work / "warmup", ("train.epochs=1",))
    figures: dict[str, tuple[list, list]] = {"script": ([], []), "gaitrun": ([], [])}
    for _ in range(args.repeats):
        for name in ("script", "gaitrun"):
            times, gaps = run_script(ctx, args.epochs) if name == "script" else run_gaitrun(recipe_file, work)[1:]
            figures[name][0].append(times)
            figures[name][1].append(gaps)
    prep = ctx.state["prepared"]
    print(f"simple_cnn (width {ctx.recipe.model.params.width}) on {len(prep.samples)} digits "
          f"{args.size}x{args.size}, batch {args.batch}, {args.epochs} epochs x {args.repeats} runs each, "
          f"{os.cpu_count()} cores, gaitrun TensorBoard logs {'off' if args.no_tensorboard else 'on'}; "
          f"median over epochs 2..{args.epochs} of every run")
    print(f"{'':22s}{'epoch time (s)':>16s}{'end-to-end (s)':>16s}")
    medians = {name: (_median_after_first(t), _median_after_first(g)) for name, (t, g) in figures.items()}
    for name, label in (("script", "hand-written Keras"), ("gaitrun", "gaitrun run")):
        print(f"{label:22s}{medians[name][0]:16.3f}{medians[name][1]:16.3f}")
    ratio, wall = (medians["gaitrun"][i] / medians["script"][i] for i in (0, 1))
    print(f"ratio gaitrun / script: epoch time {ratio:.3f}x (target <= 1.05x), "
          f"end-to-end incl. checkpoint {wall:.3f}x")


if __name__ == "__main__":
    main()
