"""The train stage end to end on scikit-learn's digits: run folder contents, metrics, and
resume of a run killed mid-fold (kill -9 after the first checkpoint)."""

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

RECIPE = """\
name: digits_train
seed: 3
data: {adapter: digits, modality: rgb, clip: {frames: 1, size: [8, 8]}, cache: none}
augment: [{shift: {max_px: 1}}]
model: {arch: simple_cnn, params: {width: 0.5}}
train: {epochs: EPOCHS, batch_size: 32, optimizer: {name: adam, lr: 0.003}}
cv: {scheme: stratified_kfold, folds: 2}
evaluate: {metrics: [accuracy, f1_macro, confusion_matrix]}
"""

pytestmark = pytest.mark.slow


def _gaitrun(*args: str, cwd: Path) -> subprocess.Popen:
    exe = Path(sys.executable).parent / "gaitrun"
    return subprocess.Popen([str(exe), *args], cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_train_writes_folds_metrics_and_learns(tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text(RECIPE.replace("EPOCHS", "6, validate_every: 4"))
    proc = _gaitrun("run", str(recipe), "--artifacts", "art", "--quiet", cwd=tmp_path)
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err
    run = next((tmp_path / "art" / "digits_train").iterdir())
    for rel in ("recipe.yaml", "manifest.json", "data.json", "folds.json", "metrics.json", "report.md",
                "folds/0/model.keras", "folds/0/history.csv", "folds/1/metrics.json", "plots/learning_curves.png",
                "plots/confusion_matrix.png"):
        assert (run / rel).is_file(), rel
    assert not list(run.glob("folds/*/checkpoint-*.keras"))  # resume checkpoints removed when a fold ends
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["summary"]["folds"] == 2
    assert metrics["summary"]["mean"]["accuracy"] > 0.5  # ten digits: chance is 0.1
    history = list(csv.DictReader((run / "folds/0/history.csv").open()))
    assert [int(r["epoch"]) for r in history] == [1, 2, 3, 4, 5, 6]
    # validate_every: 4 validates after epoch 4 and after the last one only
    assert [int(r["epoch"]) for r in history if r["val_accuracy"]] == [4, 6]


def test_killed_mid_fold_resumes_and_finishes(tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text(RECIPE.replace("EPOCHS", "4"))
    proc = _gaitrun("run", str(recipe), "--artifacts", "art", "--quiet", cwd=tmp_path)
    deadline = time.time() + 300
    checkpoint = None
    while time.time() < deadline and proc.poll() is None:
        found = list((tmp_path / "art").glob("digits_train/*/folds/0/checkpoint.json"))
        if found and json.loads(found[0].read_text())["epoch"] >= 2:
            checkpoint = found[0]
            break
        time.sleep(0.2)
    assert checkpoint is not None and proc.poll() is None, "the run ended before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    run = checkpoint.parents[2]
    stages = {s["name"]: s["status"] for s in json.loads((run / "manifest.json").read_text())["stages"]}
    assert stages["data"] == "done" and stages["train"] == "running"
    resumed = _gaitrun("resume", str(run), "--quiet", cwd=tmp_path)
    _, err = resumed.communicate(timeout=600)
    assert resumed.returncode == 0, err
    history = list(csv.DictReader((run / "folds/0/history.csv").open()))
    epochs = [int(r["epoch"]) for r in history]
    assert epochs == [1, 2, 3, 4]  # continued from the checkpoint, not from scratch
    assert json.loads((run / "metrics.json").read_text())["summary"]["folds"] == 2
    stages = {s["name"]: s["status"] for s in json.loads((run / "manifest.json").read_text())["stages"]}
    assert set(stages.values()) == {"done"}


def test_deterministic_rerun_gives_identical_metrics(tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text(RECIPE.replace("EPOCHS", "2").replace("batch_size: 32,", "batch_size: 32, deterministic: true,"))
    results = []
    for artifacts in ("a", "b"):
        proc = _gaitrun("run", str(recipe), "--artifacts", artifacts, "--quiet", "--set", "data.max_samples=400",
                        cwd=tmp_path)
        _, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err
        run = next((tmp_path / artifacts / "digits_train").iterdir())
        results.append(json.loads((run / "metrics.json").read_text())["folds"])
    assert results[0] == results[1]
