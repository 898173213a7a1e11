"""``train.distributed``: each fold trained by Ray Train's ``TensorflowTrainer`` (the driver side).

The cluster is named as for sweeps, through the same code (``sweep.cluster.ray_session``, with
its token handling and one-line connection errors): ``$RAY_ADDRESS`` (``auto`` or ``host:port``),
else a new local Ray private to this process. A sweep trial's work process is given the sweep's
cluster in ``$RAY_ADDRESS`` (``sweep.trainable``), so its workers run on that cluster. Before a
fold starts, the cluster must be able to hold ``workers`` x (``cpus_per_worker``,
``gpus_per_worker``) at all, else a one-line error (exit 2). The workers
(``worker.train_loop``) write the fold's files into the run folder, which must therefore be on
storage every node shares, as must the clip store cache; Ray Train's own state goes to
``<run>/ray_train/``. While they train, the driver passes each epoch the chief writes on to its
callbacks (``relay.EpochRelay``). Ray is imported only inside functions."""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..atomic import read_json
from ..errors import StageError, UsageError
from .fold import resume_point
from .relay import EpochRelay

ENV_PREFIXES = ("GAITRUN_", "TF_CPP_MIN_LOG_LEVEL")  # passed on to the workers


@contextlib.contextmanager
def cluster(recipe: Any) -> Iterator[str | None]:
    """The Ray session for a distributed training (nothing for a one-process one)."""
    if recipe.train.distributed is None:
        yield None
        return
    from ..sweep.cluster import ray_session

    with ray_session(None) as target:  # $RAY_ADDRESS, else a local Ray
        yield target


def per_node() -> list[dict[str, float]]:
    """Each live node's total resources (``{"CPU": 2.0, ...}``)."""
    import ray

    return [n["Resources"] for n in ray.nodes() if n.get("Alive")]


def worker_slots(dist: Any, nodes: list[dict[str, float]]) -> int:
    """How many of ``dist``'s workers the nodes could hold at once (a worker is on one node)."""
    need = {"CPU": dist.cpus_per_worker, "GPU": dist.gpus_per_worker}
    return sum(min(math.floor(n.get(k, 0) / v + 1e-9) if v else dist.workers for k, v in need.items())
               for n in nodes)


def describe_nodes(nodes: list[dict[str, float]]) -> str:
    return ", ".join(f"{n.get('CPU', 0):g} CPU / {n.get('GPU', 0):g} GPU" for n in nodes) or "no nodes"


def check_fits(dist: Any, target: str) -> None:
    """The cluster must be able to hold every worker at once (the group starts together)."""
    nodes = per_node()
    if worker_slots(dist, nodes) >= dist.workers:
        return
    have = describe_nodes(nodes)
    raise UsageError(f"train.distributed: {dist.workers} workers x ({dist.cpus_per_worker:g} CPU, "
                     f"{dist.gpus_per_worker:g} GPU) can never fit the Ray cluster '{target}' (nodes: {have}); "
                     f"lower train.distributed.workers, cpus_per_worker or gpus_per_worker, or add nodes")


def _trainer(dist: Any, config: dict[str, Any], run: Path, fold: str) -> Any:
    from ray.train import CheckpointConfig, FailureConfig, RunConfig, ScalingConfig
    from ray.train.tensorflow import TensorflowTrainer

    from .worker import train_loop

    env = {k: v for k, v in os.environ.items() if k.startswith(ENV_PREFIXES)}
    resources = {"CPU": dist.cpus_per_worker, **({"GPU": dist.gpus_per_worker} if dist.gpus_per_worker else {})}
    return TensorflowTrainer(
        train_loop, train_loop_config=config,
        scaling_config=ScalingConfig(num_workers=dist.workers, use_gpu=dist.gpus_per_worker > 0,
                                     resources_per_worker=resources),
        run_config=RunConfig(name=f"fold-{fold}", storage_path=str(run / "ray_train"),
                             failure_config=FailureConfig(max_failures=dist.max_failures),
                             checkpoint_config=CheckpointConfig(num_to_keep=1),
                             worker_runtime_env={"env_vars": env}))


def train_fold(ctx: Any, fold: Any, folder: Path, target: str) -> None:
    """Train ``fold`` on the cluster; the chief leaves ``folder/model.keras`` and the rest."""
    dist = ctx.recipe.train.distributed
    check_fits(dist, target)
    run = ctx.folder.path.resolve()
    workers_dir = run / "ray_train" / f"fold-{fold.name}" / "workers"
    config = {"run": str(run), "fold": fold.name, "cwd": os.getcwd(), "cpus": dist.cpus_per_worker,
              "workers_dir": str(workers_dir)}
    try:  # each epoch the chief writes goes to the callbacks (terminal, a sweep trial's Tune reports)
        with EpochRelay(fold.name, folder, ctx.callbacks.on_epoch_end, done=resume_point(folder)[0]):
            _trainer(dist, config, run, fold.name).fit()
    except Exception as exc:  # Ray's TrainingFailedError carries the worker's error
        raise StageError("train", f"distributed training of fold {fold.name} failed: {_cause(exc)}; after a "
                         f"fix: 'gaitrun resume {ctx.folder.path}'") from exc
    ranks = sorted(workers_dir.glob("rank-*.json"), key=lambda p: int(p.stem.split("-")[1]))
    ctx.folder.manifest["workers"] = [{k: read_json(p)[k] for k in ("rank", "node_id", "host")} for p in ranks]
    ctx.folder.save()


def _cause(exc: BaseException) -> str:
    """The innermost error's last line (Ray wraps the worker's exception)."""
    while exc.__cause__ is not None:
        exc = exc.__cause__
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[-1] if lines else ''}"
