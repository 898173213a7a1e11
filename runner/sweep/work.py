"""A sweep trial's work, in a process of its own: ``python -m gaitrun.sweep.work``.

The trial's Ray actor (``trainable.run_trial``) starts this process for every trial and is
reused from trial to trial; the process does the ordinary gaitrun run and exits, so a trial's
TensorFlow state and memory go with it and the next trial starts clean, without paying for a
new Ray worker. It reads its job (JSON) on stdin: the sweep folder, the trial's folder and its
sampled values. It loads the sweep's ``recipe.yaml`` with those values as overrides, makes (or,
after an interruption or a retry, reopens) a run folder in the trial's folder and runs the
stages with the same ``RunContext`` and ``run_stages`` as ``gaitrun run``.

It writes one JSON line per message to its stdout: ``{"kind": "epoch", "result": ...}`` after
every epoch and ``{"kind": "final", "result": ...}`` at the end, each with the process's peak
memory and CPU seconds so far. A job with ``"kind": "shared_training"`` runs the sweep's recipe
without its prune and deploy sections in ``trial_dir`` (the training that the trials of a
``search.share_training`` sweep reuse, given to them as ``reuses_run``). Anything else that prints (TensorFlow, Keras) goes to stderr. A gaitrun error
ends it with exit code 3 and the traceback (last line ``DataError: <file>: <message>``) on
stderr.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from ..callbacks import Callback, CallbackList
from ..errors import GaitrunError
from .figures import epoch_result, final_metrics
from .space import targets, trial_overrides

Send = Callable[[str, dict[str, Any]], None]
GAITRUN_ERROR_EXIT = 3
# The shared training of a ``search.share_training`` sweep: the sweep's recipe, trained only.
SHARED_TRAINING_OVERRIDES = ["search=null", "prune=null", "deploy=null"]


def cpu_seconds() -> float:
    """CPU time (user + system) of this process and its finished children: the trial's cost."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return round(own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime, 2)


def peak_rss_mb() -> float:
    """This process's peak resident memory, in MB: the trial's own."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS
    return round(peak / (1024 * 1024 if os.uname().sysname == "Darwin" else 1024), 1)


class EpochSender(Callback):
    """Sends each epoch's figures. A search metric that is only computed after training
    (``accuracy``) is sent per epoch as its Keras twin (``val_accuracy``); a metric with no
    per-epoch value (``rank1_nm``, ``latency_ms_b1``) is left out, so that epoch is not
    reported to Tune (only the final result carries it)."""

    def __init__(self, metrics: list[str], send: Send):
        self.metrics = metrics
        self.send = send

    def on_epoch_end(self, fold: str, epoch: int, logs: dict[str, float]) -> None:
        result = epoch_result(logs)
        for name in self.metrics:
            if name not in result and f"val_{name}" in result:
                result[name] = result[f"val_{name}"]
        if all(name in result for name in self.metrics):
            self.send("epoch", {**result, "fold": fold, "epoch": epoch + 1})


def _run_folder(trial_dir: Path, loaded: Any, reuses: str | None = None) -> Any:
    """The trial's run folder: the one an earlier attempt left, else a new one. ``reuses``: the
    sweep's shared training (``search.share_training``); the new folder then skips data and
    training and reuses that run's, as ``gaitrun prune RUN`` does."""
    from ..runfolder import RunFolder
    from ..stages import plan

    for manifest in sorted(trial_dir.glob("*/manifest.json"), reverse=True):
        folder = RunFolder.open(manifest.parent)
        if folder.manifest["recipe_hash"] == loaded.hash:
            return folder
    stages = [s for s in plan(loaded.recipe) if reuses is None or s not in ("data", "train")]
    folder = RunFolder.create(loaded, stages, parent=trial_dir)
    if reuses is not None:
        folder.manifest["reuses_run"] = reuses
        folder.save()
    return folder


def _run(folder: Any, loaded: Any, sender: Callback, strict: bool) -> None:
    from ..registry import registries
    from ..stages import RunContext, run_stages

    if folder.is_finished():
        return  # finished before the sweep was interrupted: not run again
    ctx = RunContext(loaded=loaded, folder=folder, regs=registries(), callbacks=CallbackList([sender]),
                     strict=strict, quiet=True)
    run_stages(ctx)


def run_and_score(job: dict[str, Any], send: Send) -> dict[str, Any]:
    """The trial's run (new, or resumed after an interruption or a failure) and its final
    figures, with ``run_folder`` relative to the sweep folder."""
    from ..errors import UsageError
    from ..recipe import load_recipe

    sweep = Path(job["sweep_dir"])
    search = load_recipe(sweep / "recipe.yaml").recipe.search
    if job.get("kind") == "shared_training":
        loaded = load_recipe(sweep / "recipe.yaml", SHARED_TRAINING_OVERRIDES)
        folder = _run_folder(Path(job["trial_dir"]), loaded)
        _run(folder, loaded, Callback(), job["strict"])
        return {**final_metrics(folder.path), "run_folder": str(folder.path.relative_to(sweep))}
    names = [t.metric for t in targets(search)]
    loaded = load_recipe(sweep / "recipe.yaml", trial_overrides(search, job["config"]))
    folder = _run_folder(Path(job["trial_dir"]), loaded, job.get("reuses_run"))
    _run(folder, loaded, EpochSender(names, send), job["strict"])
    final = final_metrics(folder.path)
    missing = [name for name in names if name not in final]
    if missing:
        raise UsageError(f"the run has no metric {', '.join(missing)}; the search metrics must be among: "
                         f"{', '.join(sorted(final))}")
    return {**final, "run_folder": str(folder.path.relative_to(sweep))}


def _channel() -> IO[str]:
    """The message stream (the original stdout); fd 1 then points at stderr, so that stray
    prints cannot corrupt the messages."""
    channel = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return channel


def main() -> int:
    job = json.loads(sys.stdin.read())
    channel = _channel()

    def send(kind: str, result: dict[str, Any]) -> None:
        channel.write(json.dumps({"kind": kind, "result": result, "peak_rss_mb": peak_rss_mb(),
                                  "cpu_s": cpu_seconds()}) + "\n")

    try:
        send("final", run_and_score(job, send))
    except GaitrunError as exc:
        traceback.print_exception(exc)
        return GAITRUN_ERROR_EXIT
    finally:
        channel.flush()
    return 0


if __name__ == "__main__":
    code = main()
    sys.stderr.flush()
    # Every file of the run is written (atomically) and closed, and the messages are flushed:
    # skip the interpreter's and TensorFlow's teardown, which takes 1-1.5 s per trial here.
    os._exit(code)
