"""The prune stage in a run; ``gaitrun prune RUN --set ...`` re-pruning a finished run without
retraining, also with another deploy target; ``gaitrun export RUN --set ...``; ``--strict`` with
a deferred export, and ``gaitrun bench`` refusing to run on an export that did not finish."""

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
model: {arch: simple_cnn, params: {width: 0.5, batch_norm: true}}
train: {epochs: 2, batch_size: 32, optimizer: {name: adam, lr: 0.003}}
cv: {scheme: stratified_kfold, folds: 2}
prune: {percentile: 30, scope: per_layer, finetune: {epochs: 1, lr: 0.001}}
deploy: {target: onnx, batch_sizes: [1], bench: {warmup: 0, iterations: 2}}
"""


def _gaitrun(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    exe = Path(sys.executable).parent / "gaitrun"
    return subprocess.run([str(exe), *args], cwd=cwd, capture_output=True, text=True, timeout=900)


def _learning(history: Path) -> list[tuple[str, str]]:
    """(accuracy, loss) of every epoch, as written (timings left out)."""
    rows = [line.split(",") for line in history.read_text().splitlines()]
    col = {name: i for i, name in enumerate(rows[0])}
    return [(r[col["accuracy"]], r[col["loss"]]) for r in rows[1:]]


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
                                   "fresh_head": False, "recalibrate_bn": 20}
    # BatchNorm statistics re-estimated after surgery on the fold's 200 training images: the 20
    # batches asked for, cut to the 7 batches of 32 there are
    fold_metrics = json.loads((run / "pruned" / "folds" / "0" / "metrics.json").read_text())
    assert fold_metrics["bn_recalibration_batches"] == 7
    history = (run / "pruned" / "folds" / pruning["best_fold"] / "history.csv").read_text().splitlines()
    assert len(history) == 2 and float(history[1].split(",")[-1]) == pytest.approx(0.001)  # fine-tuned at its lr
    assert (run / "pruned" / "model.keras").is_file() and (run / "plots" / "filters_kept.png").is_file()
    assert "## Pruning" in (run / "report.md").read_text()

    assert pruning["summary"] == "L1 filter norms below the 30th percentile (per_layer)"

    # the same settings again, in a fresh process: surgery and fine-tuning are seeded per fold,
    # so the pruned models learn exactly as in the run (loss and accuracy of every epoch)
    res = _gaitrun("prune", str(run), "--artifacts", "same", "--quiet", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    same = next((tmp_path / "same" / "digits_prune").iterdir())
    for fold in ("0", "1"):
        first, second = (_learning(r / "pruned" / "folds" / fold / "history.csv") for r in (run, same))
        assert first == second and len(first) == 1, (first, second)

    # another percentile and another target: the saved recipe's onnx keys (opset, ...) go
    res = _gaitrun("prune", str(run), "--set", "prune.percentile=50", "--set", "deploy.target=tflite",
                   "--artifacts", "art2", "--quiet", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    again = next((tmp_path / "art2" / "digits_prune").iterdir())
    manifest = json.loads((again / "manifest.json").read_text())
    assert manifest["reuses_run"] == str(run.resolve())
    assert [s["name"] for s in manifest["stages"]] == ["prune", "export", "bench", "report"]
    assert not (again / "folds").exists()  # nothing retrained
    second = json.loads((again / "pruned" / "pruning.json").read_text())
    assert second["report"]["settings"]["percentile"] == 50.0
    assert second["report"]["totals"]["params"]["after"] < totals["params"]["after"]
    assert json.loads((again / "export" / "export.json").read_text())["model"].endswith(".tflite")

    # exporting the re-pruned run again deploys ITS pruned model (not the first run's) and
    # lists it in the trade-off table as the pruned model
    res = _gaitrun("export", str(again), "--set", "deploy.target=onnx", "--artifacts", "art3", "--quiet",
                   cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    third = next((tmp_path / "art3" / "digits_prune").iterdir())
    ours = again.resolve() / "pruned" / "model.keras"
    assert Path(json.loads((third / "export" / "export.json").read_text())["source_model"]) == ours
    rows = {r["name"]: r for r in json.loads((third / "bench.json").read_text())["rows"]}
    assert Path(rows["pruned keras"]["artifact"]) == ours and rows["pruned fp32 (onnx)"]["deployed"]
    # a --set on a stage the export reuses would change nothing: refused
    res = _gaitrun("export", str(again), "--set", "prune.percentile=10", cwd=tmp_path)
    assert res.returncode == 2 and "re-prune with 'gaitrun prune" in res.stderr, res.stderr


def test_export_with_set_and_strict_deferral(tmp_path):
    (tmp_path / "r.yaml").write_text(RECIPE.replace("prune: {percentile: 30, scope: per_layer, "
                                                    "finetune: {epochs: 1, lr: 0.001}}\n", ""))
    assert _gaitrun("run", "r.yaml", "--artifacts", "art", "--quiet", cwd=tmp_path).returncode == 0
    run = next((tmp_path / "art" / "digits_prune").iterdir())

    # another target into a new run folder; more INT8 calibration windows than training has is said
    res = _gaitrun("export", str(run), "--set", "deploy.target=tensorrt", "--set", "deploy.precision=int8",
                   "--set", "deploy.calibration_samples=5000", "--artifacts", "art2", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    again = next((tmp_path / "art2" / "digits_prune").iterdir())
    stages = json.loads((again / "manifest.json").read_text())["stages"]
    assert [s["name"] for s in stages] == ["export", "bench", "report"] and stages[0]["status"] == "deferred"
    export = json.loads((again / "export" / "export.json").read_text())
    assert Path(export["source_model"]).parents[2] == run.resolve()  # the reused run's trained model
    used = export["calibration_samples"]
    assert used["asked"] == 5000 and 0 < used["used"] < 5000
    assert (f"warning: deploy.calibration_samples is 5000 but the training split has only {used['used']} "
            "windows") in " ".join(res.stderr.split())

    # no TensorRT here: the engine build is deferred, which --strict makes an error (exit 1) ...
    res = _gaitrun("export", str(run), "--strict", "--set", "deploy.target=tensorrt", "--artifacts", "art3",
                   "--quiet", cwd=tmp_path)
    assert res.returncode == 1 and "cannot build the TensorRT engine here" in res.stderr
    strict = next((tmp_path / "art3" / "digits_prune").iterdir())
    # ... and bench then refuses instead of exporting again behind the user's back
    res = _gaitrun("bench", str(strict), cwd=tmp_path)
    assert res.returncode == 2
    assert res.stderr.strip() == (f"{strict}: its export stage is 'failed', so there is "
                                  f"nothing to benchmark; run 'gaitrun export {strict}' first")
