"""``train.distributed``: recipe errors at their line, validation without TensorFlow or Ray,
a cluster too small refused in one line, a 2-worker run through the CLI that leaves an
ordinary run folder (plus ``workers`` in the manifest), a worker killed mid-epoch that Ray
Train replaces (``max_failures``) without losing or repeating an epoch, and a whole run killed
(driver, its Ray, the workers) that ``gaitrun resume`` finishes from its last epoch checkpoint."""

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
from conftest import BASE_RECIPE

from gaitrun.errors import RecipeError
from gaitrun.recipe import load_recipe

DIST = BASE_RECIPE.replace("  epochs: 2\n", "  epochs: 2\n  distributed: {workers: 2}\n")
# one small fold: the run costs two Ray worker starts, not one per fold
SMALL = DIST.replace("cv: {scheme: stratified_kfold, folds: 3}", "cv: {scheme: holdout, group_by: null}") \
            .replace("  clip: {frames: 1, size: [8, 8]}\n", "  clip: {frames: 1, size: [8, 8]}\n  max_samples: 400\n") \
            .replace("  epochs: 2\n", "  epochs: 3\n  validate_every: 2\n")
# long enough epochs (batch 8: ~180 steps) for a kill to land inside one; one restart allowed
KILLED = DIST.replace("cv: {scheme: stratified_kfold, folds: 3}", "cv: {scheme: holdout, group_by: null}") \
             .replace("batch_size: 32", "batch_size: 8").replace("  epochs: 2\n", "  epochs: 4\n") \
             .replace("{workers: 2}", "{workers: 2, max_failures: 1}")


def _problems(tmp_path, text: str) -> list[str]:
    path = tmp_path / "recipe.yaml"
    path.write_text(text)
    with pytest.raises(RecipeError) as info:
        load_recipe(path)
    return [str(p).replace(str(tmp_path) + "/", "") for p in info.value.problems]


@pytest.mark.parametrize(("old", "new", "expected"), [
    ("  epochs: 2\n", "  epochs: 2\n  strategy: mirrored\n",
     "recipe.yaml:17:13: train.strategy: strategy 'mirrored' (one process, local GPUs) cannot be combined with "
     "train.distributed.workers > 1; use strategy: auto (each worker uses train.distributed.gpus_per_worker GPUs)"),
    ("batch_size: 32", "batch_size: 33",
     "recipe.yaml:15:15: train.batch_size: 33 is the global batch and must be divisible by train.distributed.workers (2)"),
    ("  epochs: 2\n", "  epochs: 2\n  mixed_precision: true\n",
     "recipe.yaml:17:20: train.mixed_precision: mixed precision is not supported with train.distributed; set "
     "mixed_precision: false or distributed: null"),
    ("  modality: rgb\n", "  modality: rgb\n  cache: memory\n",
     "recipe.yaml:7:10: data.cache: 'memory': distributed workers read the clip store from the disk cache (on "
     "storage every node shares); set data.cache: disk"),
    ("evaluate:\n", "search: {space: {train.batch_size: {choice: [8, 9, 15]}}}\nevaluate:\n",
     "recipe.yaml:19:18: search.space.train.batch_size: 9, 15: a trial's global batch must be divisible by "
     "train.distributed.workers (2)"),
    ("{workers: 2}", "{worker: 2}",
     "recipe.yaml:17:17: train.distributed.worker: unknown key 'worker'; did you mean 'workers'?"),
    ("{workers: 2}", "{workers: 0}",
     "recipe.yaml:17:26: train.distributed.workers: Input should be greater than or equal to 1 (got 0)"),
])
def test_recipe_errors_at_their_line(tmp_path, old, new, expected):
    assert old in DIST
    assert _problems(tmp_path, DIST.replace(old, new, 1)) == [expected]


def test_validation_imports_neither_tensorflow_nor_ray(tmp_path):
    path = tmp_path / "recipe.yaml"
    path.write_text(DIST)
    code = ("import sys\nfrom gaitrun.recipe import load_recipe\n"
            f"r = load_recipe({str(path)!r}).recipe\nassert r.train.distributed.workers == 2\n"
            "print(sorted(m for m in ('tensorflow', 'keras', 'ray') if m in sys.modules))")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "[]"


def test_the_chiefs_epochs_are_relayed_once_in_order_while_the_block_runs(tmp_path):
    from gaitrun.atomic import write_json
    from gaitrun.train.relay import POLL_S, EpochRelay

    seen = []

    def write(*epochs: int) -> None:
        write_json(tmp_path / "checkpoint.json", {"epoch": epochs[-1], "model": "m.keras",
                                                  "history": [{"epoch": e, "loss": 1.0 / e} for e in epochs]})

    write(1, 2)  # done before this start (a resumed fold): not passed on again
    with EpochRelay("0", tmp_path, lambda fold, epoch, logs: seen.append((fold, epoch, logs)), done=2):
        write(1, 2, 3)
        deadline = time.monotonic() + 5
        while not seen and time.monotonic() < deadline:
            time.sleep(POLL_S / 4)
        assert seen == [("0", 2, {"loss": 1 / 3})]  # while the block runs, 0-based as Keras counts
        write(1, 2)  # a restarted group runs epoch 3 again
        write(1, 2, 3, 4, 5)  # the last epochs: passed on when the block ends, if not before
    assert [epoch for _, epoch, _ in seen] == [2, 3, 4]


def test_workers_resume_from_the_later_of_the_run_folders_checkpoint_and_ray_trains(tmp_path, monkeypatch):
    """Killed after the chief wrote epoch 3's checkpoint.json (and dropped epoch 2's model) but
    before Ray Train got its copy: Ray Train's names a model that is gone, the run folder's is used."""
    import ray.train

    from gaitrun.atomic import write_json
    from gaitrun.train import worker

    fold, reported = tmp_path / "fold", tmp_path / "reported"
    fold.mkdir()
    reported.mkdir()
    rows = [{"epoch": e, "loss": 1.0 / e} for e in (1, 2, 3)]
    write_json(reported / "checkpoint.json", {"epoch": 2, "model": "checkpoint-0002.keras", "history": rows[:2]})
    write_json(fold / "checkpoint.json", {"epoch": 3, "model": "checkpoint-0003.keras", "history": rows})
    (fold / "checkpoint-0003.keras").write_bytes(b"model")
    monkeypatch.setattr(ray.train, "get_checkpoint", lambda: ray.train.Checkpoint.from_directory(str(reported)))
    assert worker._resume(fold) == (3, fold / "checkpoint-0003.keras", rows)
    (fold / "checkpoint-0002.keras").write_bytes(b"model")  # were the run folder's unusable, Ray Train's
    (fold / "checkpoint-0003.keras").unlink()
    assert worker._resume(fold) == (2, fold / "checkpoint-0002.keras", rows[:2])


def _run(tmp_path, monkeypatch, run_cli, text: str):
    monkeypatch.setenv("GAITRUN_ARTIFACTS", str(tmp_path / "artifacts"))
    monkeypatch.setenv("GAITRUN_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    path = tmp_path / "recipe.yaml"
    path.write_text(text)
    code, out, err = run_cli(path)
    runs = list((tmp_path / "artifacts").glob("*/*/manifest.json"))
    return code, err, runs[0].parent if runs else None


@pytest.mark.slow
def test_a_cluster_too_small_is_refused_in_one_line(tmp_path, monkeypatch, run_cli):
    code, err, run = _run(tmp_path, monkeypatch, run_cli, SMALL.replace("{workers: 2}", "{workers: 2, cpus_per_worker: 8}"))
    assert code == 2
    line = err.strip().splitlines()[-1]
    assert "train.distributed: 2 workers x (8 CPU, 0 GPU) can never fit the Ray cluster 'local'" in line
    assert line.endswith("lower train.distributed.workers, cpus_per_worker or gpus_per_worker, or add nodes")
    assert json.loads((run / "manifest.json").read_text())["stages"][1]["status"] == "failed"


@pytest.mark.slow
def test_two_workers_through_the_cli_leave_a_normal_run_folder(tmp_path, monkeypatch, run_cli):
    code, err, run = _run(tmp_path, monkeypatch, run_cli, SMALL)
    assert code == 0, err
    manifest = json.loads((run / "manifest.json").read_text())
    assert all(s["status"] == "done" for s in manifest["stages"])
    assert [w["rank"] for w in manifest["workers"]] == [0, 1]
    assert all(w["node_id"] and w["host"] for w in manifest["workers"])
    fold = run / "folds" / "0"
    assert (fold / "model.keras").is_file() and (fold / "metrics.json").is_file()
    assert list((fold / "tensorboard").rglob("events.out.tfevents.*"))
    assert not list(fold.glob("checkpoint-*.keras"))  # dropped once the final model is saved
    rows = list(csv.DictReader((fold / "history.csv").open()))
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3] and all(float(r["loss"]) > 0 for r in rows)
    assert [int(r["epoch"]) for r in rows if r["val_accuracy"]] == [2, 3]  # validate_every: 2, and the last
    metrics = json.loads((run / "metrics.json").read_text())
    assert 0 <= metrics["summary"]["mean"]["accuracy"] <= 1


def _wait_for(what: str, proc: subprocess.Popen, log: Path, found, timeout: float = 300.0):
    """Poll ``found()`` until it returns something; fail if the run ends or time runs out first."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = found()
        if value:
            return value
        if proc.poll() is not None:
            pytest.fail(f"the run ended (exit {proc.returncode}) before {what}: {log.read_text()[-2000:]}")
        time.sleep(0.05)
    pytest.fail(f"no {what} after {timeout:g} s")


def _epoch(meta: Path) -> int:
    return json.loads(meta.read_text())["epoch"] if meta.is_file() else 0


def _reap(proc: subprocess.Popen, log) -> None:
    """A run the test no longer waits for is killed; its log is closed."""
    if proc.poll() is None:
        proc.kill()
        proc.wait()
    log.close()


def _assert_finished_by_two_workers(run: Path) -> None:
    manifest = json.loads((run / "manifest.json").read_text())
    assert all(s["status"] == "done" for s in manifest["stages"]), manifest["stages"]
    assert [w["rank"] for w in manifest["workers"]] == [0, 1]


@pytest.mark.slow
def test_a_worker_killed_mid_epoch_is_recovered(tmp_path):
    """SIGKILL to rank 1 in epoch 2 (just after the chief's epoch-1 checkpoint reached Ray Train,
    before epoch 2's): a new worker group resumes at epoch 2 and the run finishes with every stage done."""
    env = {**os.environ, "GAITRUN_ARTIFACTS": str(tmp_path / "artifacts"), "GAITRUN_CACHE": str(tmp_path / "cache")}
    env.pop("RAY_ADDRESS", None)
    (tmp_path / "recipe.yaml").write_text(KILLED)
    log = (tmp_path / "log.txt").open("w")  # a file, not a pipe nobody reads while we wait
    proc = subprocess.Popen([str(Path(sys.executable).parent / "gaitrun"), "run", str(tmp_path / "recipe.yaml"),
                             "--quiet"], env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        run = _wait_for("a run folder", proc, tmp_path / "log.txt", lambda: next((tmp_path / "artifacts").glob("*/*/folds"), None)).parent
        meta = run / "folds" / "0" / "checkpoint.json"
        _wait_for("epoch 1's Ray Train checkpoint", proc, tmp_path / "log.txt",
                  lambda: _epoch(meta) == 1 and list((run / "ray_train" / "fold-0").glob("checkpoint_*")))
        time.sleep(min(0.5, json.loads(meta.read_text())["history"][0]["epoch_time_s"] / 4))  # into epoch 2
        victim = json.loads((run / "ray_train" / "fold-0" / "workers" / "rank-1.json").read_text())["pid"]
        os.kill(victim, signal.SIGKILL)
        assert _epoch(meta) == 1, "epoch 2 ended before the kill: the kill was not mid-epoch"
        proc.wait(timeout=600)
    finally:
        _reap(proc, log)
    assert proc.returncode == 0, (tmp_path / "log.txt").read_text()[-3000:]
    _assert_finished_by_two_workers(run)
    restarted = json.loads((run / "ray_train" / "fold-0" / "workers" / "rank-1.json").read_text())
    assert restarted["pid"] != victim  # a new rank 1 finished the fold
    rows = list(csv.DictReader((run / "folds" / "0" / "history.csv").open()))
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3, 4]  # resumed at epoch 2: none lost, none repeated


def _session_and_worker_pids(sid: int, workers: Path) -> list[int]:
    """Live processes of the killed driver's session (with its local Ray) and the Ray Train
    workers it recorded (Ray may start them in sessions of their own); zombies do not count."""
    ranks = {json.loads(p.read_text())["pid"] for p in workers.glob("rank-*.json")}
    pids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()  # after the name: state, ppid, pgrp, session
        except OSError:
            continue
        pid = int(stat.parent.name)
        if fields[0] != "Z" and (int(fields[3]) == sid or pid in ranks):
            pids.append(pid)
    return pids


@pytest.mark.slow
def test_a_killed_distributed_run_is_resumed(tmp_path):
    """SIGKILL to the whole run (driver, its local Ray, the workers) once the chief has written
    epoch 1's checkpoint; ``gaitrun resume`` then finishes it from that checkpoint: every stage
    done, each epoch once in the history, the epochs before the kill not trained again."""
    env = {**os.environ, "GAITRUN_ARTIFACTS": str(tmp_path / "artifacts"), "GAITRUN_CACHE": str(tmp_path / "cache")}
    env.pop("RAY_ADDRESS", None)
    (tmp_path / "recipe.yaml").write_text(KILLED)
    exe = str(Path(sys.executable).parent / "gaitrun")
    log = (tmp_path / "log.txt").open("w")
    proc = subprocess.Popen([exe, "run", str(tmp_path / "recipe.yaml"), "--quiet"], env=env, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)
    try:
        run = _wait_for("a run folder", proc, tmp_path / "log.txt",
                        lambda: next((tmp_path / "artifacts").glob("*/*/folds"), None)).parent
        meta = run / "folds" / "0" / "checkpoint.json"
        _wait_for("epoch 1's checkpoint", proc, tmp_path / "log.txt", lambda: _epoch(meta) >= 1)
        workers = run / "ray_train" / "fold-0" / "workers"
        deadline = time.monotonic() + 30
        while (left := _session_and_worker_pids(proc.pid, workers)) and time.monotonic() < deadline:
            for pid in left:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.2)
        assert not _session_and_worker_pids(proc.pid, workers)
        proc.wait(timeout=30)
    finally:
        _reap(proc, log)
    assert proc.returncode == -signal.SIGKILL
    killed_at = json.loads(meta.read_text())["history"]
    assert 1 <= len(killed_at) < 4, "the run was not killed in training"

    res = subprocess.run([exe, "resume", str(run), "--quiet"], env=env, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    _assert_finished_by_two_workers(run)
    rows = list(csv.DictReader((run / "folds" / "0" / "history.csv").open()))
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3, 4]  # each epoch once
    for before, after in zip(killed_at, rows[:len(killed_at)], strict=True):  # kept, not trained again
        assert float(after["loss"]) == pytest.approx(before["loss"], rel=1e-9)
    assert (run / "folds" / "0" / "model.keras").is_file() and (run / "metrics.json").is_file()
