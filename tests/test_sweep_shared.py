"""A Pareto sweep with ``search.share_training`` on a local Ray, as the shipped
``recipes/sweep_prune_precision.yaml`` runs, made tiny (digits, a 2 x 2 grid): the model is
trained once, every trial prunes, exports and benchmarks its own copy of that training, and
each trial's figures are its deployed model's."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

RECIPE = """\
name: digits_shared
seed: 3
data: {adapter: digits, modality: rgb, clip: {frames: 1, size: [8, 8]}, cache: memory, max_samples: 400}
model: {arch: simple_cnn, params: {width: 0.25}}
train: {epochs: 1, batch_size: 64}
cv: {scheme: holdout, fraction: 0.3, group_by: index}
prune: {percentile: 30, scope: per_layer, finetune: {epochs: 1}}
deploy: {target: onnx, precision: int8, batch_sizes: [1], calibration_samples: 32, max_drop: 1.0,
         bench: {warmup: 1, iterations: 5, threads: 1}}
search:
  space: {prune.percentile: {grid: [0, 50]}, deploy.precision: {grid: [fp32, int8]}}
  algorithm: grid
  num_samples: 1
  share_training: true
  max_concurrent: 2
  objectives: [{metric: exported_accuracy, mode: max}, {metric: latency_ms_b1, mode: min}]
"""


def test_shared_training_sweep(tmp_path: Path):
    (tmp_path / "sweep.yaml").write_text(RECIPE)
    res = subprocess.run([str(Path(sys.executable).parent / "gaitrun"), "sweep.yaml", "--artifacts", "art",
                          "--json"], cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    out = json.loads(res.stdout)
    sweep = Path(out["sweep_folder"])
    assert out["counts"]["done"] == 4

    # trained once: the shared run trains (no prune, no deploy), the trials only prune onwards
    shared = [m.parent for m in sweep.glob("shared/*/manifest.json")]
    assert len(shared) == 1 and (shared[0] / "folds").is_dir()
    assert [s["name"] for s in json.loads((shared[0] / "manifest.json").read_text())["stages"]] == [
        "data", "train", "report"]
    manifest = json.loads((sweep / "sweep.json").read_text())
    assert manifest["shared_training"]["cpu_s"] > 0 and out["shared_training"] == manifest["shared_training"]

    rows = list(csv.DictReader((sweep / "trials.csv").open()))
    assert {(r["prune.percentile"], r["deploy.precision"]) for r in rows} == {
        ("0", "fp32"), ("0", "int8"), ("50", "fp32"), ("50", "int8")}
    for row in rows:
        run = sweep / row["run_folder"]
        trial = json.loads((run / "manifest.json").read_text())
        assert trial["reuses_run"] == str(shared[0]) and not (run / "folds").exists()
        assert [s["name"] for s in trial["stages"]] == ["prune", "export", "bench", "report"]
        assert float(row["cpu_s"]) > 0
        # the trial's figures are its deployed model's row of the trade-off table
        deployed = [r for r in json.loads((run / "bench.json").read_text())["rows"] if r["deployed"]]
        assert len(deployed) == 1 and deployed[0]["precision"] == row["deploy.precision"]
        assert float(row["latency_ms_b1"]) == deployed[0]["latency"]["1"]["p50_ms"]
        assert float(row["exported_accuracy"]) == deployed[0]["accuracy"]
        assert int(row["exported_bytes"]) == deployed[0]["bytes"]
        assert row["latency_backend"] == f"pruned {row['deploy.precision']} (onnx)"
    sizes = {(r["prune.percentile"], r["deploy.precision"]): int(r["exported_bytes"]) for r in rows}
    assert sizes[("50", "fp32")] < sizes[("0", "fp32")]  # pruned by the trial itself

    front = json.loads((sweep / "pareto.json").read_text())["front"]
    assert front and {r["trial_id"] for r in front} <= {r["trial_id"] for r in rows}
    assert (sweep / "plots" / "pareto.png").is_file() and (sweep / "best_recipe.yaml").is_file()


def test_a_resumed_sweep_finds_its_finished_shared_training(tmp_path: Path):
    from gaitrun.recipe import load_recipe
    from gaitrun.runfolder import RunFolder
    from gaitrun.sweep.folder import SweepFolder
    from gaitrun.sweep.shared import SHARED_DIR, finished_shared_run
    from gaitrun.sweep.work import SHARED_TRAINING_OVERRIDES

    (tmp_path / "sweep.yaml").write_text(RECIPE)
    folder = SweepFolder.create(load_recipe(tmp_path / "sweep.yaml"), artifacts=tmp_path / "art", strict=False)
    assert finished_shared_run(folder) is None
    trained = load_recipe(folder.file("recipe.yaml"), SHARED_TRAINING_OVERRIDES)
    assert trained.recipe.prune is None and trained.recipe.deploy is None and trained.recipe.search is None
    run = RunFolder.create(trained, ["data", "train", "report"], parent=folder.file(SHARED_DIR))
    assert finished_shared_run(folder) is None  # unfinished: the resumed sweep continues it
    for stage in ("data", "train", "report"):
        run.set_status(stage, "done")
    assert finished_shared_run(folder) == run.path
