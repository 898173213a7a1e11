"""A grid sweep end to end on a local Ray: one searched value fails at run time (the digits
have no subjects to group by), is retried and ends failed without stopping the sweep; the
driver is killed after a trial finished, and ``gaitrun resume`` completes the sweep without
running the finished trial again."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gaitrun.recipe import load_recipe
from gaitrun.runfolder import FINISHED

RECIPE = """\
name: digits_sweep
seed: 1
data: {adapter: digits, modality: rgb, clip: {frames: 1, size: [8, 8]}, cache: memory}
model: {arch: simple_cnn, params: {width: 0.25}}
train: {epochs: 2, batch_size: 64}
cv: {scheme: holdout, fraction: 0.3, group_by: index}
search:
  space: {model.params.width: {grid: [0.25, 0.5]}, cv.group_by: {grid: [index, subject]}}
  algorithm: grid
  num_samples: 1
  max_concurrent: 2
  max_failures: 1
  metric: accuracy
  mode: max
"""
GRID = {("0.25", "index"), ("0.25", "subject"), ("0.5", "index"), ("0.5", "subject")}

pytestmark = pytest.mark.slow


def _gaitrun(*args: str) -> list[str]:
    return [str(Path(sys.executable).parent / "gaitrun"), *args]


def _finished_run(sweep_root: Path) -> Path | None:
    """A trial run folder whose every stage is finished, if one exists yet."""
    for manifest in sweep_root.glob("*-sweep/trials/*/*/manifest.json"):
        stages = json.loads(manifest.read_text())["stages"]
        if all(s["status"] in FINISHED for s in stages):
            return manifest.parent
    return None


def _session_pids(sid: int) -> list[int]:
    """Processes of session ``sid``: the killed driver's local Ray daemons and workers."""
    pids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[3]) == sid:  # fields after the name: state, ppid, pgrp, session
            pids.append(int(stat.parent.name))
    return pids


def _kill_driver(proc: subprocess.Popen) -> None:
    """kill -9 the sweep's driver, then the Ray processes it started (same session)."""
    proc.kill()
    proc.wait(timeout=30)
    deadline = time.monotonic() + 30
    while (left := _session_pids(proc.pid)) and time.monotonic() < deadline:
        for pid in left:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.5)
    assert not _session_pids(proc.pid)


def _interrupted_sweep(tmp_path: Path) -> tuple[Path, Path, str]:
    """Start the sweep, kill its driver once a trial has finished; (sweep, that run, its manifest)."""
    recipe = tmp_path / "sweep.yaml"
    recipe.write_text(RECIPE)
    log = (tmp_path / "driver.log").open("w")
    proc = subprocess.Popen(_gaitrun("run", str(recipe), "--artifacts", "art", "--quiet"), cwd=tmp_path,
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 300
        while (run := _finished_run(tmp_path / "art" / "digits_sweep")) is None:
            assert proc.poll() is None, (tmp_path / "driver.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "no trial finished in 300 s"
            time.sleep(1)
        assert proc.poll() is None, "the sweep ended before it could be interrupted"
    finally:
        _kill_driver(proc)
    sweep = next((tmp_path / "art" / "digits_sweep").glob("*-sweep"))
    return sweep, run, (run / "manifest.json").read_text()


def test_failing_trial_is_retried_and_an_interrupted_sweep_resumes(tmp_path: Path):
    sweep, finished_run, manifest_before = _interrupted_sweep(tmp_path)
    assert json.loads((sweep / "sweep.json").read_text())["status"] == "running"

    res = subprocess.run(_gaitrun("resume", str(sweep), "--json"), cwd=tmp_path, capture_output=True,
                         text=True, timeout=400)
    assert res.returncode == 0, res.stderr[-3000:]
    payload = json.loads(res.stdout)
    assert payload["ok"] and payload["status"] == "done"
    assert payload["counts"] == {"done": 2, "stopped": 0, "failed": 2, "not_run": 0, "unfinished": 0}

    rows = list(csv.DictReader((sweep / "trials.csv").open()))
    assert {(r["model.params.width"], r["cv.group_by"]) for r in rows} == GRID  # every grid point, once
    for row in rows:
        if row["cv.group_by"] == "subject":
            assert row["status"] == "failed" and int(row["failures"]) >= 2  # tried, retried once
            assert "has no 'subject' metadata" in row["error"]
        else:
            assert row["status"] == "done" and 0 < float(row["accuracy"]) <= 1
            assert float(row["peak_rss_mb"]) > 100 and row["node_id"] and float(row["duration_s"]) > 0
        assert len(list((sweep / "trials" / row["trial_id"]).glob("*/manifest.json"))) == 1

    # the trial that finished before the kill was not run again
    assert (finished_run / "manifest.json").read_text() == manifest_before
    assert str(finished_run.relative_to(sweep)) in {r["run_folder"] for r in rows}

    best = payload["best"]
    assert best["accuracy"] == max(float(r["accuracy"]) for r in rows if r["status"] == "done")
    loaded = load_recipe(sweep / "best_recipe.yaml")
    assert loaded.recipe.search is None
    assert loaded.hash == json.loads((sweep / best["run_folder"] / "manifest.json").read_text())["recipe_hash"]
    assert (sweep / "plots" / "accuracy_vs_model.params.width.png").is_file()
    assert (sweep / "plots" / "accuracy_vs_cv.group_by.png").is_file()
    manifest = json.loads((sweep / "sweep.json").read_text())
    assert manifest["status"] == "done" and len(manifest["runs"]) == 2
