"""One Ray Train worker's share of a fold (``train_loop_per_worker``): the recipe's model under
``MultiWorkerMirroredStrategy`` (Ray sets ``TF_CONFIG``), trained by ``replica.make_train_step``
on this worker's shard of the clip store.

After a worker-group restart (Ray Train's ``FailureConfig``) or ``gaitrun resume`` every worker
resumes from the later of the run folder's ``checkpoint.json`` (``fold.resume_point``) and
``ray.train.get_checkpoint()`` (a copy of it, reported each epoch, naming the epoch's model in
the run folder). The chief (rank 0) writes the
per-epoch checkpoints, ``history.csv``, TensorBoard logs and ``model.keras`` exactly as the
one-process fit does; the other workers save the same files into a temporary folder (saving may
involve collectives), and all report each epoch to Ray Train (a barrier)."""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from ..atomic import write_json


def _context(config: dict[str, Any]) -> Any:
    """A RunContext without a run folder (the driver holds its lock), for the recipe in it."""
    from ..recipe import load_recipe
    from ..registry import registries
    from ..stages import RunContext

    loaded = load_recipe(Path(config["run"]) / "recipe.yaml")
    return RunContext(loaded=loaded, folder=None, regs=registries(), quiet=True)


def _record_worker(config: dict[str, Any], rank: int, **more: Any) -> None:
    """``<workers_dir>/rank-<rank>.json``: where this worker runs (the manifest's ``workers``), its
    pid, and at the end its CPU seconds."""
    import ray

    info = {**more, "rank": rank, "node_id": ray.get_runtime_context().get_node_id(), "host": socket.gethostname(),
            "pid": os.getpid()}
    write_json(Path(config["workers_dir"]) / f"rank-{rank}.json", info)


def _threads(cpus: float) -> None:
    import tensorflow as tf

    n = max(1, int(cpus))
    tf.config.threading.set_intra_op_parallelism_threads(n)
    tf.config.threading.set_inter_op_parallelism_threads(n)


def _fold(ctx: Any, prep: Any, name: str) -> Any:
    from .splits import make_splits

    folds, _ = make_splits(ctx, prep.samples)
    return next(f for f in folds if f.name == name)


def train_loop(config: dict[str, Any]) -> None:
    """Ray Train's ``train_loop_per_worker`` for one fold."""
    import ray.train

    os.chdir(config["cwd"])  # relative data paths in the recipe, as for the driver
    rank, world = ray.train.get_context().get_world_rank(), ray.train.get_context().get_world_size()
    _record_worker(config, rank)
    _threads(config["cpus"])
    import tensorflow as tf

    from ..stages.data import prepared
    from . import setup

    ctx = _context(config)
    setup.configure_tensorflow(ctx.recipe.train, ctx.recipe.seed)
    strategy = tf.distribute.MultiWorkerMirroredStrategy()
    prep = prepared(ctx)
    fold = _fold(ctx, prep, config["fold"])
    folder = Path(config["run"]) / "folds" / fold.name
    with tempfile.TemporaryDirectory(prefix="gaitrun-worker-") as scratch:
        out = folder if rank == 0 else Path(scratch)
        _fit(ctx, prep, fold, strategy, rank=rank, world=world, folder=folder, out=out)
    times = os.times()
    _record_worker(config, rank, cpu_s=round(times.user + times.system, 2))


def _fit(ctx: Any, prep: Any, fold: Any, strategy: Any, *, rank: int, world: int, folder: Path, out: Path) -> None:
    from ..data.pipeline import oversampled
    from ..outputs import declared_outputs
    from . import parts, setup
    from .fold import finish_fold

    recipe, train = ctx.recipe, ctx.recipe.train
    done, checkpoint, history = _resume(folder)
    with strategy.scope():
        model = parts.build_model(ctx, prep, checkpoint)
    positions = oversampled(fold.train, prep.labels[fold.train]) if recipe.data.oversample else fold.train
    for until, factor, prepare in parts.phases(ctx, train.epochs, None):
        if done >= until:
            continue
        if prepare is not None:
            prepare(model)
        lr = train.optimizer.lr * factor
        with strategy.scope():
            train_model, loss, label_of = setup.training_model(model, train.loss, declared_outputs(ctx))
            parts.compile_model(model, train_model, loss, train, resumed=checkpoint is not None and prepare is None,
                                optimizer=train.optimizer.name, lr=lr)
            train_model.optimizer.build(train_model.trainable_variables)
        plan = _Plan(ctx, prep, fold, strategy, rank=rank, world=world, positions=positions, label_of=label_of)
        callbacks = parts.fit_callbacks(train, lr, None, (out / "tensorboard") if rank == 0 else None)
        history = plan.run(train_model, model, loss, callbacks, out=out, epochs=(done, until), history=history)
        done = max(done, len(history))
        if train_model.stop_training:
            break
    finish_fold(out, model)


def _resume(folder: Path) -> tuple[int, Path | None, list[dict]]:
    """Where this fold goes on: the later of the run folder's ``checkpoint.json`` and Ray Train's
    latest checkpoint (a copy of it, reported after each epoch; Ray Train gives it after a
    worker-group restart, and after ``gaitrun resume`` from its storage in ``ray_train/``). The
    chief writes the run folder's first and then reports the copy, so a kill between the two
    leaves Ray Train's naming a model already replaced (unusable): the run folder's is then the
    later one."""
    import ray.train

    from .fold import resume_point

    own = resume_point(folder)
    saved = ray.train.get_checkpoint()
    if saved is None:
        return own
    with saved.as_directory() as where:
        reported = resume_point(folder, Path(where) / "checkpoint.json")
    return max(own, reported, key=lambda point: point[0])


def _report(rank: int, folder: Path, logs: dict[str, float]) -> None:
    """Every worker reports each epoch (a barrier); the chief adds a Ray Train checkpoint: a copy
    of ``checkpoint.json`` (the model it names stays in the run folder, on shared storage)."""
    import ray.train

    if rank != 0:
        ray.train.report(logs)
        return
    with tempfile.TemporaryDirectory(prefix="gaitrun-ckpt-") as tmp:
        shutil.copy(folder / "checkpoint.json", tmp)
        ray.train.report(logs, checkpoint=ray.train.Checkpoint.from_directory(tmp))


class _Plan:
    """This worker's data and the epoch loop of one training phase."""

    def __init__(self, ctx: Any, prep: Any, fold: Any, strategy: Any, *, rank: int, world: int,
                 positions: np.ndarray, label_of: Any):
        from ..data.store import shard
        from . import parts

        train, seed = ctx.recipe.train, ctx.recipe.seed
        self.strategy, self.train, self.rank = strategy, train, rank
        self.global_batch = train.batch_size
        if self.global_batch % strategy.num_replicas_in_sync:
            raise ValueError(f"train.batch_size {self.global_batch} is not divisible by the "
                             f"{strategy.num_replicas_in_sync} replicas")
        mine = shard(positions, rank=rank, world=world, seed=seed)
        val = shard(fold.val, rank=rank, world=world, seed=seed)
        local = self.global_batch // world
        train_ds, self.val_ds = parts.datasets(ctx, prep, mine, val, batch_size=local, label_of=label_of)
        self.has_val = len(val) > 0
        self.steps = parts.steps_per_epoch(len(positions), self.global_batch)
        self.class_weight = parts.class_weights(ctx, prep, positions)
        self.iterator = iter(strategy.distribute_datasets_from_function(
            lambda input_ctx: train_ds.unbatch().batch(input_ctx.get_per_replica_batch_size(self.global_batch))
            if len(strategy.extended.worker_devices) > 1 else train_ds))

    def run(self, train_model: Any, model: Any, loss: Any, callbacks: list[Any], *, out: Path,
            epochs: tuple[int, int], history: list[dict]) -> list[dict]:
        import keras

        from . import replica, setup
        from .fold import FitPlan, epoch_checkpoint

        accuracy = self.train.loss.name == "cross_entropy"
        weights = setup.loss_weights(self.train.loss)
        step = replica.make_train_step(self.strategy, train_model, loss=loss, loss_weights=weights,
                                       global_batch=self.global_batch, class_weight=self.class_weight,
                                       accuracy=accuracy)
        evaluate = replica.make_eval_step(train_model, loss=loss, loss_weights=weights, accuracy=accuracy)
        rows = list(history)
        plan = FitPlan(folder=out, epochs=epochs[1], steps_per_epoch=self.steps, callbacks=[], class_weight=None,
                       validate_every=self.train.validate_every,
                       on_epoch=lambda e, logs: _report(self.rank, out, {"epoch": e + 1, **logs}))
        every = keras.callbacks.CallbackList([*callbacks, epoch_checkpoint(plan, model, rows)],
                                             model=train_model)
        every.on_train_begin()
        for epoch in range(*epochs):
            every.on_epoch_begin(epoch)
            logs = self._epoch(step, evaluate, accuracy, validate=epoch + 1 in plan.validation_epochs())
            replica.average_non_trainable(self.strategy, train_model)
            every.on_epoch_end(epoch, logs)
            if train_model.stop_training:
                break
        every.on_train_end()
        return rows

    def _epoch(self, step: Any, evaluate: Any, accuracy: bool, *, validate: bool) -> dict[str, float]:
        total = np.zeros(3)
        for _ in range(self.steps):
            total += np.asarray(step(self.iterator))
        logs = {"loss": total[0] / total[2]}
        if accuracy:
            logs["accuracy"] = total[1] / total[2]
        if validate:  # the same decision on every worker: all_sum is a collective
            logs.update(self._validate(evaluate, accuracy))
        return {k: float(v) for k, v in logs.items()}

    def _validate(self, evaluate: Any, accuracy: bool) -> dict[str, float]:
        """Validation figures over every worker's shard of the validation fold."""
        from . import replica

        val = np.zeros(3)
        if self.has_val:
            for x, y in self.val_ds:
                val += np.asarray(evaluate(x, y))
        val = replica.all_sum(self.strategy, val)
        out = {"val_loss": val[0] / max(val[2], 1)}
        if accuracy:
            out["val_accuracy"] = val[1] / max(val[2], 1)
        return out
