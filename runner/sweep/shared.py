"""``search.share_training``: one training for every trial of a sweep that searches only what
comes after training (``prune.*``, ``deploy.*``: pruning and fine-tuning, export, benchmark).

Before the trials, the driver trains the sweep's recipe without its ``prune`` and ``deploy``
sections once, in a Ray task on the cluster (a work process, as a trial), into
``<sweep>/shared/<run id>/``, an ordinary run folder. Each trial's run folder then skips data
and training and reuses that run's (``reuses_run`` in its manifest), as ``gaitrun prune RUN``
does; its figures (accuracy, history) are the shared training's, its ``pruned_*``,
``exported_*`` and ``latency_ms_*`` its own. A resumed sweep reuses a finished shared training
and continues an unfinished one. What it cost is in ``sweep.json`` (``shared_training``).
It reserves ``search.resources`` on Ray like a trial, and as no trial runs beside it, it uses
the TensorFlow threads of ``max_concurrent`` trials (at most its node's cores)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from ..errors import StageError
from ..recipe.search import Search
from .folder import SweepFolder
from .work import SHARED_TRAINING_OVERRIDES

SHARED_DIR = "shared"


def finished_shared_run(folder: SweepFolder) -> Path | None:
    """The sweep's shared training, if it has finished (a resumed sweep does not train again)."""
    from ..recipe import load_recipe
    from ..runfolder import RunFolder

    wanted = load_recipe(folder.file("recipe.yaml"), SHARED_TRAINING_OVERRIDES).hash
    for manifest in sorted(folder.file(SHARED_DIR).glob("*/manifest.json"), reverse=True):
        run = RunFolder.open(manifest.parent)
        if run.manifest["recipe_hash"] == wanted and run.is_finished():
            return run.path
    return None


def _train(sweep_dir: str, cpus: float, workdir: str, strict: bool) -> dict[str, Any]:
    """In a Ray task: the shared training's work process; its final figures and cost. No trial
    runs beside it, so it may use the cores of ``max_concurrent`` trials (at most the node's)."""
    import os

    from .trainable import _failure, _start_work

    cpus = min(cpus, float(os.cpu_count() or 1))
    started = time.perf_counter()
    job = {"kind": "shared_training", "sweep_dir": sweep_dir, "trial_dir": str(Path(sweep_dir) / SHARED_DIR),
           "config": {}, "strict": strict}
    proc, tail = _start_work(job, cpus, workdir)
    final = None
    for line in proc.stdout:
        message = json.loads(line)
        if message["kind"] == "final":
            final = {"run_folder": message["result"]["run_folder"], "cpu_s": message["cpu_s"],
                     "peak_rss_mb": message["peak_rss_mb"], "duration_s": round(time.perf_counter() - started, 2)}
    code = proc.wait()
    if code != 0 or final is None:
        raise _failure(code, tail)
    return final


def shared_training(folder: SweepFolder, search: Search) -> str:
    """The finished shared training's run folder (absolute): found, or trained now on Ray."""
    import sys

    import ray

    done = finished_shared_run(folder)
    if done is not None:
        return str(done)
    sys.stderr.write(f"gaitrun: training once for every trial (search.share_training) in "
                     f"{folder.file(SHARED_DIR)}\n")
    task = ray.remote(_train).options(num_cpus=search.resources.cpu, num_gpus=search.resources.gpu,
                                      max_retries=search.max_failures, retry_exceptions=True)
    try:
        info = ray.get(task.remote(str(folder.path), search.resources.cpu * search.max_concurrent,
                                   folder.manifest["workdir"], folder.manifest["strict"]))
    except ray.exceptions.RayTaskError as exc:
        lines = [ln for ln in str(exc.cause if exc.cause is not None else exc).splitlines() if ln.strip()]
        raise StageError("train", f"the shared training failed: {lines[-1] if lines else exc}; its run folder "
                         f"is under {folder.file(SHARED_DIR)}") from exc
    folder.manifest["shared_training"] = info
    folder.save()
    return str(folder.file(info["run_folder"]))
