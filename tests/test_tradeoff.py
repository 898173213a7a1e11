"""The trade-off table every pruning or quantising run makes: unpruned vs pruned, Keras vs each
exported precision, with sizes, scores and latencies (``bench.json``, ``report.md``, the plot),
and ``gaitrun bench RUN`` measuring it again."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

from gaitrun.tradeoff import plan

REPO = Path(__file__).resolve().parents[1]

RECIPE = """\
name: digits_tradeoff
seed: 3
data: {adapter: digits, modality: rgb, clip: {frames: 1, size: [8, 8]}, cache: none, max_samples: 400}
model: {arch: simple_cnn, params: {width: 1.0}}
train: {epochs: 8, batch_size: 32, optimizer: {name: adam, lr: 0.01}}
cv: {scheme: holdout, fraction: 0.3, group_by: null}
prune: {percentile: 40, scope: per_layer, finetune: {epochs: 1, lr: 0.001}}
deploy: {target: onnx, precision: int8, batch_sizes: [1, 4], calibration_samples: 32,
         max_drop: 0.1, bench: {warmup: 1, iterations: 3, threads: 1}}
"""


def test_plan_lists_unpruned_and_every_pruned_precision_once():
    onnx = frozenset({"fp32", "fp16", "int8"})
    assert plan(target="onnx", precisions=onnx, deployed="int8", pruned=True) == [
        ("unpruned", "fp32"), ("unpruned", "int8"), ("pruned", "fp32"), ("pruned", "fp16"), ("pruned", "int8")]
    assert plan(target="onnx", precisions=onnx, deployed="fp32", pruned=True) == [
        ("unpruned", "fp32"), ("pruned", "fp32"), ("pruned", "fp16"), ("pruned", "int8")]
    assert plan(target="onnx", precisions=onnx, deployed="int8", pruned=False) == [
        ("unpruned", "fp32"), ("unpruned", "fp16"), ("unpruned", "int8")]
    assert plan(target="saved_model", precisions=frozenset({"fp32"}), deployed="fp32", pruned=False) == [
        ("unpruned", "fp32")]


def _gaitrun(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    exe = Path(sys.executable).parent / "gaitrun"
    return subprocess.run([str(exe), *args], cwd=cwd, capture_output=True, text=True, timeout=900)


@pytest.mark.slow
def test_a_pruned_int8_run_writes_the_whole_table_and_bench_remeasures_it(tmp_path):
    (tmp_path / "r.yaml").write_text(RECIPE)
    res = _gaitrun("run", "r.yaml", "--artifacts", "art", "--quiet", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    run = next((tmp_path / "art" / "digits_tradeoff").iterdir())
    bench = json.loads((run / "bench.json").read_text())
    rows = {r["name"]: r for r in bench["rows"]}
    assert list(rows) == ["unpruned keras", "pruned keras", "unpruned fp32 (onnx)", "unpruned int8 (onnx)",
                          "pruned fp32 (onnx)", "pruned fp16 (onnx)", "pruned int8 (onnx)"]
    assert [r["name"] for r in bench["rows"] if r["deployed"]] == ["pruned int8 (onnx)"]
    assert rows["pruned int8 (onnx)"]["artifact"] == "export/model.int8.onnx"
    for row in bench["rows"]:
        assert (run / row["artifact"]).exists(), row["artifact"]  # unpruned exports live in the run too
        assert 0.0 <= row["accuracy"] <= 1.0
        assert set(row["latency"]) == {"1", "4"} and row["latency"]["4"]["throughput_per_s"] > 0
        assert row["speedup_vs_unpruned_keras"]["1"] > 0
    assert rows["unpruned keras"]["speedup_vs_unpruned_keras"]["1"] == pytest.approx(1.0)
    assert rows["pruned keras"]["params"] < rows["unpruned keras"]["params"]
    assert rows["pruned keras"]["flops"] < rows["unpruned keras"]["flops"]
    assert rows["pruned int8 (onnx)"]["bytes"] < rows["pruned fp32 (onnx)"]["bytes"] < rows["unpruned fp32 (onnx)"]["bytes"]
    # every variant is scored on the same evaluation windows: FP32 exports score as their Keras model
    assert rows["unpruned keras"]["accuracy"] > 0.5  # digits learn
    assert rows["unpruned fp32 (onnx)"]["accuracy"] == pytest.approx(rows["unpruned keras"]["accuracy"])
    assert rows["pruned fp32 (onnx)"]["accuracy"] == pytest.approx(rows["pruned keras"]["accuracy"])
    assert abs(rows["pruned int8 (onnx)"]["accuracy"] - rows["pruned keras"]["accuracy"]) <= 0.1
    assert bench["cpu"]["model"] and isinstance(bench["cpu"]["avx512_vnni"], bool)
    report = (run / "report.md").read_text()
    assert "## Trade-off" in report and "pruned int8 (onnx) **deployed**" in report
    # the header says how the rows were timed: at least 3 calls, more below min_time_s (0.3 s)
    assert "1 threads, 3 iterations or more, at least 0.3 s per model and batch size, after 1 warm-up" in report
    assert (run / "plots" / "tradeoff.png").stat().st_size > 1000

    # bench/recipes.py reads the same rows: pruned and deployed accuracy, and the deployed pruned
    # model's speed-up over the unpruned export at the same precision (INT8), per batch size
    spec = importlib.util.spec_from_file_location("bench_recipes", REPO / "bench" / "recipes.py")
    bench_recipes = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench_recipes)
    figures: dict = {}
    speedup = bench_recipes.tradeoff(run, figures)
    assert figures == {"pruned_accuracy": rows["pruned keras"]["accuracy"],
                       "deployed_accuracy": rows["pruned int8 (onnx)"]["accuracy"]}
    lat, ref = rows["pruned int8 (onnx)"]["latency"], rows["unpruned int8 (onnx)"]["latency"]
    assert speedup == {b: round(ref[b]["p50_ms"] / lat[b]["p50_ms"], 2) for b in ("1", "4")}

    before = (run / "bench.json").stat().st_mtime_ns
    res = _gaitrun("bench", str(run), "--quiet", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    again = json.loads((run / "bench.json").read_text())
    assert (run / "bench.json").stat().st_mtime_ns > before
    assert [r["name"] for r in again["rows"]] == list(rows)
    assert again["rows"][0]["latency"]["1"] != bench["rows"][0]["latency"]["1"]  # measured anew
