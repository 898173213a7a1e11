"""Sweeps whose trials train on Ray Train workers (``train.distributed``).

On a local Ray of 3 logical CPUs (``RAY_OVERRIDE_RESOURCES``; 2 cores here): each trial's driver
reserves 0.5 CPU and its 2 workers 1 CPU each, so one trial fits at a time and the sweep says it
runs 1 trial at once instead of ``max_concurrent: 2``.
Both trials train on the sweep's own Ray (their work processes connect to it through
``RAY_ADDRESS``: no second Ray is started); the first (lr 0.003) finishes, and ASHA stops the
second (lr 1e-7, chance accuracy) at its first rung, epoch 1, from the epoch reports that the
work process relays from the chief's checkpoint while the workers train: its fold stops before
its last epoch. A trial that could never fit (8 workers) is refused in one line before any
trial starts, and the sweep folder says failed with the reason."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from gaitrun.recipe import load_recipe
from gaitrun.sweep.capacity import _at_once, fits_once, trial_need

EPOCHS = 8
RECIPE = f"""\
name: digits_dist_sweep
seed: 3
data: {{adapter: digits, modality: rgb, clip: {{frames: 1, size: [8, 8]}}, cache: disk}}
model: {{arch: simple_cnn, params: {{width: 0.25}}}}
train:
  epochs: {EPOCHS}
  batch_size: 16
  optimizer: {{name: adam, lr: 0.003}}
  tensorboard: false
  distributed: {{workers: 2, cpus_per_worker: 1}}
cv: {{scheme: holdout, group_by: null}}
evaluate: {{metrics: [accuracy], plots: false}}
search:
  space: {{train.optimizer.lr: {{grid: [0.003, 1.0e-7]}}}}
  algorithm: grid
  scheduler: asha
  grace_period: 1
  num_samples: 1
  max_concurrent: 2
  resources: {{cpu: 0.5}}
  max_failures: 0
  metric: accuracy
  mode: max
"""


def _loaded(tmp_path: Path, *overrides: str):
    path = tmp_path / "sweep.yaml"
    path.write_text(RECIPE)
    return load_recipe(path, list(overrides))


def test_a_sweep_may_have_distributed_trials_and_a_trial_needs_its_driver_and_workers(tmp_path: Path):
    need = trial_need(_loaded(tmp_path, "search.resources.cpu=0.5", "search.resources.gpu=0.25").recipe)
    assert (need.cpu, need.gpu) == (2.5, 0.25)
    assert str(need) == ("0.5 CPU, 0.25 GPU for its driver (search.resources) + 2 workers x (1 CPU, 0 GPU) "
                         "(train.distributed) = 2.5 CPU, 0.25 GPU")
    assert _at_once(need, {"CPU": 8.0, "GPU": 1.0}) == 3  # CPUs for 3, GPUs for 4
    assert _at_once(need, {"CPU": 2.0}) == 0
    assert trial_need(_loaded(tmp_path, "train.distributed=null").recipe) is None  # one process per trial


def test_a_trial_fits_only_if_a_node_holds_its_driver_and_the_rest_its_workers(tmp_path: Path):
    need = trial_need(_loaded(tmp_path, "train.distributed.cpus_per_worker=0.75").recipe)  # 0.5 + 2 x 0.75 CPU
    assert need.cpu == 2.0 and _at_once(need, {"CPU": 2.0}) == 1
    assert fits_once(need, [{"CPU": 2.0}])
    assert not fits_once(need, [{"CPU": 1.0}, {"CPU": 1.0}])  # 2 CPU in all, but the driver takes half a node
    assert fits_once(need, [{"CPU": 1.0}, {"CPU": 1.5}])
    assert fits_once(trial_need(_loaded(tmp_path, "train.distributed.cpus_per_worker=0.5").recipe),
                     [{"CPU": 1.0}, {"CPU": 1.0}])
    assert not fits_once(trial_need(_loaded(tmp_path, "train.distributed.gpus_per_worker=1").recipe),
                         [{"CPU": 8.0, "GPU": 1.0}])


def test_a_searched_worker_count_counts_with_its_largest_value(tmp_path: Path):
    loaded = _loaded(tmp_path, "search.space={train.distributed.workers: {choice: [1, 4, 2]}}",
                     "train.batch_size=16")
    need = trial_need(loaded.recipe)
    assert (need.dist.workers, need.cpu) == (4, 4.5)


def _gaitrun(tmp_path: Path, *args: str, cpus: int | None = None) -> subprocess.CompletedProcess:
    """``gaitrun run`` of the sweep on a new local Ray (of ``cpus`` logical CPUs, else the cores)."""
    (tmp_path / "sweep.yaml").write_text(RECIPE)
    env = {**os.environ, "GAITRUN_CACHE": str(tmp_path / "cache")}
    env.pop("RAY_ADDRESS", None)
    if cpus is not None:
        env["RAY_OVERRIDE_RESOURCES"] = json.dumps({"CPU": cpus})
    return subprocess.run([str(Path(sys.executable).parent / "gaitrun"), "run", "sweep.yaml", "--artifacts", "art",
                           *args], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)


def _sweep(tmp_path: Path) -> Path:
    (sweep,) = (tmp_path / "art" / "digits_dist_sweep").glob("*-sweep")
    return sweep


def _reports(sweep: Path, trial: str) -> list[dict]:
    """What the trial reported to Tune, in order (Tune's ``result.json``: one line per report)."""
    lines = (sweep / "tune" / trial / "result.json").read_text().splitlines()
    return [json.loads(line) for line in lines if line.strip()]


@pytest.mark.slow
def test_distributed_trials_run_on_the_sweeps_ray_and_asha_stops_one_mid_fold(tmp_path: Path):
    res = _gaitrun(tmp_path, "--json", cpus=3)
    assert res.returncode == 0, res.stderr[-3000:]
    assert ("gaitrun: running 1 trial(s) at once, not search.max_concurrent 2: one trial needs 0.5 CPU, 0 GPU for "
            "its driver (search.resources) + 2 workers x (1 CPU, 0 GPU) (train.distributed) = 2.5 CPU, 0 GPU and the "
            "Ray cluster 'local' has 3 CPU, 0 GPU in all; nodes: 3 CPU / 0 GPU") in res.stderr
    payload = json.loads(res.stdout)
    assert payload["counts"] == {"done": 1, "stopped": 1, "failed": 0, "not_run": 0, "unfinished": 0}
    sweep = _sweep(tmp_path)
    rows = {float(r["train.optimizer.lr"]): r for r in csv.DictReader((sweep / "trials.csv").open())}
    good, weak = rows[0.003], rows[1e-7]
    assert good["status"] == "done" and 0.5 < float(good["accuracy"]) <= 1
    assert weak["status"] == "stopped"

    for row, epochs in ((good, EPOCHS), (weak, None)):
        (run,) = [m.parent for m in (sweep / "trials" / row["trial_id"]).glob("*/manifest.json")]
        manifest = json.loads((run / "manifest.json").read_text())
        history = json.loads((run / "folds" / "0" / "checkpoint.json").read_text())["history"] \
            if (run / "folds" / "0" / "checkpoint.json").is_file() else None
        reports = [r for r in _reports(sweep, row["trial_id"]) if "epoch" in r]
        # each epoch reported once, in order, with its validation accuracy as the search metric
        assert [r["epoch"] for r in reports] == list(range(1, len(reports) + 1))
        assert all(r["accuracy"] == r["val_accuracy"] for r in reports)
        # the workers ran on the sweep's own Ray: the same node as the trial's actor
        workers = sorted((run / "ray_train" / "fold-0" / "workers").glob("rank-*.json"))
        assert len(workers) == 2
        assert {json.loads(w.read_text())["node_id"] for w in workers} == {reports[0]["node_id"]}
        if epochs is not None:  # the finished trial: every stage done, every epoch reported
            assert all(s["status"] == "done" for s in manifest["stages"])
            assert [w["rank"] for w in manifest["workers"]] == [0, 1]
            assert len(reports) == EPOCHS
        else:  # stopped at epoch 1 by ASHA, while its workers trained: the fold never finished
            assert reports[-1]["epoch"] == 1
            assert not (run / "folds" / "0" / "model.keras").is_file()
            assert history is None or len(history) < EPOCHS
    manifest = json.loads((sweep / "sweep.json").read_text())
    assert manifest["status"] == "done"


@pytest.mark.slow
def test_a_trial_that_can_never_fit_is_refused_before_any_trial_starts(tmp_path: Path):
    res = _gaitrun(tmp_path, "--set", "train.distributed.workers=8")  # the cores: 2 CPU
    assert res.returncode == 2, res.stderr[-3000:]
    assert "Traceback" not in res.stderr
    line = res.stderr.strip().splitlines()[-1]
    says = ("one trial needs 0.5 CPU, 0 GPU for its driver (search.resources) + 8 workers x (1 CPU, 0 GPU) "
            "(train.distributed) = 8.5 CPU, 0 GPU, which can never fit the Ray cluster 'local' (2 CPU, 0 GPU in all; "
            "nodes: 2 CPU / 0 GPU); lower train.distributed.workers, cpus_per_worker or gpus_per_worker or "
            "search.resources, or add nodes")
    assert line.endswith(says), line
    sweep = _sweep(tmp_path)
    manifest = json.loads((sweep / "sweep.json").read_text())
    assert manifest["status"] == "failed" and manifest["reason"] == says, manifest
    assert manifest["runs"][-1]["status"] == "failed"
    assert not (sweep / "trials").exists() and not (sweep / "tune").exists()  # no trial was launched
