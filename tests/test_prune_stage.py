"""The prune stage in a run, and ``gaitrun prune RUN --percentile P`` re-pruning a finished run
without retraining."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

RECIPE = """\
name: digits_prune
seed: 5
data: {adapter: digits, modality: rgb, clip: {frames: 1, size: [8, 8]}, cache: none, max_samples: 400}
model: {arch: simple_cnn, params: {width: 0.5}}
train: {epochs: 2, batch_size: 32, optimizer: {name: adam, lr: 0.003}}
cv: {scheme: stratified_kfold, folds: 2}
prune: {percentile: 30, scope: per_layer, finetune: {epochs: 1, lr: 0.001}}
"""


def _gaitrun(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    exe = Path(sys.executable).parent / "gaitrun"
    return subprocess.run([str(exe), *args], cwd=cwd, capture_output=True, text=True, timeout=900)


def test_prune_stage_then_prune_again(tmp_path):
    (tmp_path / "r.yaml").write_text(RECIPE)
    res = _gaitrun("run", "r.yaml", "--artifacts", "art", "--quiet", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    run = next((tmp_path / "art" / "digits_prune").iterdir())
    pruning = json.loads((run / "pruned" / "pruning.json").read_text())
    totals = pruning["report"]["totals"]
    assert totals["params"]["after"] < totals["params"]["before"]
    assert totals["filters"]["after"] < totals["filters"]["before"]
    assert {"before", "after_pruning", "after_finetune"} <= set(pruning)
    assert pruning["finetune"] == {"epochs": 1, "lr": 0.001, "schedule": "cosine", "optimizer": "adam",
                                   "fresh_head": False}
    history = (run / "pruned" / "folds" / pruning["best_fold"] / "history.csv").read_text().splitlines()
    assert len(history) == 2 and float(history[1].split(",")[-1]) == pytest.approx(0.001)  # fine-tuned at its lr
    assert (run / "pruned" / "model.keras").is_file() and (run / "plots" / "filters_kept.png").is_file()
    assert "## Pruning" in (run / "report.md").read_text()

    res = _gaitrun("prune", str(run), "--percentile", "50", "--artifacts", "art2", "--quiet", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    again = next((tmp_path / "art2" / "digits_prune").iterdir())
    manifest = json.loads((again / "manifest.json").read_text())
    assert manifest["reuses_run"] == str(run.resolve())
    assert [s["name"] for s in manifest["stages"]] == ["prune", "report"]
    assert not (again / "folds").exists()  # nothing retrained
    second = json.loads((again / "pruned" / "pruning.json").read_text())
    assert second["percentile"] == 50.0
    assert second["report"]["totals"]["params"]["after"] < totals["params"]["after"]
