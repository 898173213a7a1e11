"""One sweep trial = one ordinary gaitrun run: Tune's function trainable, in a Ray actor.

The actor is reused from trial to trial (no Ray worker start per trial); for each trial it
starts ``python -m gaitrun.sweep.work`` (``work.py``), which runs the trial's recipe in a run
folder under ``<sweep>/trials/<trial id>/`` and exits, taking the trial's TensorFlow state
and memory with it. The actor relays the work's per-epoch figures to Tune (so ASHA and the
median rule can stop weak trials: the work process is then killed) and its final result,
saved as ``trials/<trial id>/result.json``. The run folder is the trial's checkpoint
(per-epoch Keras checkpoints and the stage manifest): a retried or resumed trial continues it,
and a trial that had finished reports its saved result again instead of running. If the actor
dies, the kernel kills its work process too (``PR_SET_PDEATHSIG``).

A trial of a recipe with ``train.distributed`` trains each fold on Ray Train workers of the
sweep's own cluster: its work process is their driver (given ``RAY_ADDRESS``, the address of the
cluster this actor runs in), the actor reserves ``search.resources`` for that driver only, and
the workers reserve their own resources through Ray Train (``capacity.py`` checks before the
sweep starts that a trial fits). The work process passes each epoch the chief worker writes on
as it appears (``train.relay``); when the work process is killed, its Ray job ends and Ray stops
its workers.
"""

from __future__ import annotations

import collections
import ctypes
import json
import math
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from ..atomic import read_json, write_json
from ..recipe.search import Search
from .work import GAITRUN_ERROR_EXIT

STDERR_LINES = 200  # the tail of a failed work process's stderr kept for the error message


class TrialError(RuntimeError):
    """A trial's run failed; the message ends with the work process's last stderr lines, whose
    last line (``DataError: <file>: <what is wrong>``) the trial table shows."""


def _die_with_parent() -> None:
    """In the work process before exec: SIGKILL it when the thread that started it dies."""
    PR_SET_PDEATHSIG = 1
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def _work_env(cpus: float) -> dict[str, str]:
    """TensorFlow in the work process uses the trial's CPU share (search.resources.cpu), and
    ``RAY_ADDRESS`` names the cluster this actor is in: a distributed trial (``train.distributed``)
    connects its Ray Train driver there, so its workers are scheduled on the sweep's cluster
    instead of on a new local Ray."""
    import ray

    n = str(max(1, math.ceil(cpus)))
    return {**os.environ, "TF_NUM_INTRAOP_THREADS": n, "TF_NUM_INTEROP_THREADS": n,
            "TF_CPP_MIN_LOG_LEVEL": os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2"),
            "RAY_ADDRESS": ray.get_runtime_context().gcs_address}


def _start_work(job: dict[str, Any], cpus: float, workdir: str) -> tuple[subprocess.Popen, collections.deque]:
    """The work process, with a thread that keeps the tail of its stderr."""
    proc = subprocess.Popen([sys.executable, "-m", "gaitrun.sweep.work"], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_work_env(cpus),
                            cwd=workdir if os.path.isdir(workdir) else None,  # relative data paths
                            preexec_fn=_die_with_parent if sys.platform == "linux" else None)
    tail: collections.deque = collections.deque(maxlen=STDERR_LINES)
    threading.Thread(target=lambda: tail.extend(proc.stderr), daemon=True).start()
    proc.stdin.write(json.dumps(job))
    proc.stdin.close()
    return proc, tail


def _failure(code: int, tail: collections.deque) -> TrialError:
    text = "".join(tail).rstrip()
    if code < 0:
        return TrialError(f"{text}\nthe trial's work process was killed by signal {-code}")
    if code != GAITRUN_ERROR_EXIT:
        text += f"\nthe trial's work process exited with code {code}"
    return TrialError(text)


def trial_info(proc: subprocess.Popen, message: dict[str, Any], started: float) -> dict[str, Any]:
    """Where and how the trial runs: Ray node, the work process's pid, peak memory and CPU
    seconds, time so far."""
    import ray

    return {"node_id": ray.get_runtime_context().get_node_id(), "peak_rss_mb": message["peak_rss_mb"],
            "cpu_s": message["cpu_s"], "duration_s": round(time.perf_counter() - started, 2), "work_pid": proc.pid}


def _relay(proc: subprocess.Popen, started: float) -> dict[str, Any] | None:
    """Report the work's epochs to Tune as they come; its final result (None if it has none)."""
    from ray import tune

    final = None
    for line in proc.stdout:
        message = json.loads(line)
        result = {**message["result"], **trial_info(proc, message, started)}
        if message["kind"] == "epoch":
            tune.report(result)
        else:
            final = {**result, "run_done": True}
    return final


def run_trial(config: dict[str, Any], *, sweep_dir: str, search: Search, workdir: str, strict: bool,
              reuses_run: str | None = None) -> None:
    """Tune's function trainable: run the sweep's recipe with ``config`` applied, in a work
    process. A trial that finished before the sweep was interrupted reports its saved result.
    ``reuses_run``: the sweep's shared training (``search.share_training``)."""
    from ray import tune

    started = time.perf_counter()
    trial_dir = Path(sweep_dir) / "trials" / tune.get_context().get_trial_id()
    if (trial_dir / "result.json").is_file():
        tune.report(read_json(trial_dir / "result.json"))
        return
    job = {"sweep_dir": sweep_dir, "trial_dir": str(trial_dir), "config": config, "strict": strict,
           "reuses_run": reuses_run}
    proc, tail = _start_work(job, search.resources.cpu, workdir)
    try:
        final = _relay(proc, started)
        code = proc.wait()
    finally:
        if proc.poll() is None:  # stopped early by the scheduler, or the relay failed
            proc.kill()
            proc.wait()
    if code != 0 or final is None:
        raise _failure(code, tail)
    write_json(trial_dir / "result.json", final)
    tune.report(final)
