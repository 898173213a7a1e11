"""A trial whose processes are killed is retried up to ``search.max_failures`` and then marked
failed, without stopping the sweep.

Two trials on a local Ray, ``max_failures: 1``. Trial A's Ray actor (the pid Tune records with
every result) is killed with SIGKILL at each attempt, so A fails for good after its retry (its
work process dies with the actor). Trial B's work process (``work_pid``, the process running the
gaitrun run) is killed once; the retry resumes B's run folder from its last epoch checkpoint and
finishes. Both pids are read from ``tune/<trial>/result.json``.

On a loaded machine Tune's driver can write a retried attempt's results only after that attempt
has ended, so the second kill of A may find no process. The test then checks the table against
the kills really delivered (one kill, one retry, done) rather than failing on timing; with two
kills delivered, A must be failed.
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

RECIPE = """\
name: digits_faults
seed: 2
data: {adapter: digits, modality: rgb, clip: {frames: 1, size: [8, 8]}, cache: memory}
model: {arch: simple_cnn, params: {width: 0.5}}
train: {epochs: 20, batch_size: 8}  # long enough to be killed mid-run on a quiet machine
cv: {scheme: holdout, fraction: 0.3, group_by: index}
search:
  space: {train.optimizer.lr: {grid: [0.001, 0.002]}}
  algorithm: grid
  num_samples: 1
  max_concurrent: 2
  max_failures: 1
  metric: accuracy
  mode: max
"""
KILLS = {0.001: ("pid", 2), 0.002: ("work_pid", 1)}  # trial's lr -> (process to kill, how often)


def _reported_pids(tune_dir: Path) -> dict[str, tuple[float, int]]:
    """trial folder name -> (its learning rate, pid of the process to kill from its last result)."""
    out = {}
    for result in tune_dir.glob("*/result.json"):
        lines = result.read_text().splitlines()
        params = result.parent / "params.json"
        if lines and params.is_file():
            try:
                lr = json.loads(params.read_text())["train.optimizer.lr"]
                pid = json.loads(lines[-1])[KILLS[lr][0]]
            except (ValueError, KeyError):
                continue  # a line being written
            out[result.parent.name] = (lr, pid)
    return out


def _tune_dir(tmp_path: Path) -> Path:
    return next((tmp_path / "art" / "digits_faults").glob("*-sweep/tune"))


def test_killed_trial_processes_are_retried_then_failed(tmp_path: Path):
    (tmp_path / "sweep.yaml").write_text(RECIPE)
    exe = Path(sys.executable).parent / "gaitrun"
    log = (tmp_path / "driver.log").open("w")
    proc = subprocess.Popen([str(exe), "run", "sweep.yaml", "--artifacts", "art", "--json"], cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=log, text=True)
    killed: dict[str, set[int]] = {}
    deadline = time.monotonic() + 600
    while proc.poll() is None:
        assert time.monotonic() < deadline, "the sweep did not end in 600 s"
        for tune_dir in (tmp_path / "art" / "digits_faults").glob("*-sweep/tune"):
            for trial, (lr, pid) in _reported_pids(tune_dir).items():
                done = killed.setdefault(trial, set())
                if pid not in done and len(done) < KILLS[lr][1]:
                    with contextlib.suppress(ProcessLookupError):  # ended before we could kill it
                        os.kill(pid, signal.SIGKILL)
                        done.add(pid)
        time.sleep(0.1)
    out = proc.stdout.read()
    assert proc.returncode == 0, (tmp_path / "driver.log").read_text()[-3000:]
    kills = {lr: len(killed.get(trial, ())) for trial, (lr, _) in _reported_pids(_tune_dir(tmp_path)).items()}
    assert kills[0.002] == 1 and kills[0.001] in (1, 2), killed

    payload = json.loads(out)
    sweep = next((tmp_path / "art" / "digits_faults").glob("*-sweep"))
    rows = {float(r["train.optimizer.lr"]): r for r in csv.DictReader((sweep / "trials.csv").open())}
    assert int(rows[0.001]["failures"]) == kills[0.001]
    if kills[0.001] == 2:  # killed at each attempt: failed for good after its one retry
        assert payload["counts"]["done"] == 1 and payload["counts"]["failed"] == 1
        assert rows[0.001]["status"] == "failed"
        assert rows[0.001]["error"], "the table says why the trial failed"
    else:  # its retry ended before the second kill could reach it
        assert payload["counts"]["done"] == 2 and rows[0.001]["status"] == "done"
    assert rows[0.002]["status"] == "done" and int(rows[0.002]["failures"]) == 1
    assert 0 < float(rows[0.002]["accuracy"]) <= 1
    # the retry went on in the same run folder (resumed from its checkpoint), not a new one
    assert len(list((sweep / rows[0.002]["run_folder"]).parent.glob("*/manifest.json"))) == 1
