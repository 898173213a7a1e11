"""``gaitrun.bench`` on a run folder without a trade-off table (an export that was deferred, or
a run made before the table): the rows are the Keras model and the export ``export.json``
records, run by the deploy target's ``runtime`` hook -- no file-name guessing of the backend or
the precision."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest

from gaitrun.bench import run_bench, untabled_rows


def _folder(tmp_path, export: dict | None):
    (tmp_path / "export").mkdir()
    (tmp_path / "export" / "model.fp16.onnx").write_bytes(b"a stray file: not what export.json names")
    if export is not None:
        (tmp_path / "export" / "export.json").write_text(json.dumps(export))
    return tmp_path


def test_rows_are_the_keras_model_and_the_recorded_export(tmp_path):
    folder = _folder(tmp_path, {"target": "acme", "precision": "int8", "model": "acme_int8/engine.bin"})
    assert untabled_rows(folder, folder / "model.keras") == [
        {"name": "keras", "backend": "keras", "artifact": "model.keras"},
        {"name": "acme (int8)", "backend": "acme", "artifact": "export/acme_int8/engine.bin"}]


def test_a_deferred_export_leaves_the_keras_row_only(tmp_path):
    folder = _folder(tmp_path, {"target": "tensorrt", "precision": "fp16", "model": None, "status": "deferred"})
    assert [r["name"] for r in untabled_rows(folder, folder / "model.keras")] == ["keras"]


def test_the_target_runtime_hook_runs_its_artefact(tmp_path):
    import keras

    folder = _folder(tmp_path, {"target": "acme", "precision": "fp32", "model": "engine.bin"})
    (folder / "export" / "engine.bin").write_bytes(b"acme engine")
    inputs = keras.Input(shape=(3,))
    keras.Model(inputs, keras.layers.Dense(2)(inputs)).save(folder / "model.keras")
    calls = []

    def runtime(path, *, threads=0):  # an exporter's hook: how its artefact runs here
        calls.append((path.name, threads))
        return lambda x: np.zeros((len(x), 2), np.float32)

    deploy = SimpleNamespace(batch_sizes=[1, 2], bench=SimpleNamespace(threads=1, warmup=0, iterations=2, min_time_s=0.0))
    bench = run_bench(folder, folder / "model.keras", (3,), deploy, seed=0, runtime=runtime)
    assert calls == [("engine.bin", 1)]
    assert [(r["backend"], r["batch_size"]) for r in bench["results"]] == [
        ("keras", 1), ("keras", 2), ("acme (fp32)", 1), ("acme (fp32)", 2)]


def test_runners_are_timed_in_interleaved_rounds():
    from gaitrun.bench import time_interleaved

    calls = []

    def runner(name):
        def run(x):
            calls.append(name)
            return x
        return run

    x = np.zeros((4, 3), np.float32)
    figures = time_interleaved({"a": runner("a"), "b": runner("b")}, x, warmup=2, iterations=7, block=3,
                               settle=1, settle_s=0.0)
    # warm-up of each, then rounds of (1 untimed + 3 timed) calls of each in turn until each has
    # 7 timed calls
    assert "".join(calls) == "aabb" + "aaaabbbb" + "aaaabbbb" + "aabb"
    assert set(figures) == {"a", "b"}
    for f in figures.values():
        assert 0 < f["p50_ms"] <= f["p95_ms"] and f["throughput_per_s"] == pytest.approx(4000 / f["mean_ms"])


def test_each_block_settles_for_a_while_before_it_is_timed():
    import time as clock

    from gaitrun.bench import time_interleaved

    starts = []

    def slow(x):  # ~5 ms a call
        starts.append(clock.perf_counter())
        clock.sleep(0.005)
        return x

    time_interleaved({"a": slow}, np.zeros((1, 2), np.float32), warmup=0, iterations=2, block=2,
                     settle=1, settle_s=0.03)
    # untimed calls for 30 ms (more than the 1 asked for at least), then the 2 timed ones
    assert len(starts) >= 2 + 2
    assert starts[-2] - starts[0] >= 0.03


def test_fast_runners_are_timed_for_min_time_in_longer_blocks_over_the_same_rounds():
    import itertools
    import time as clock

    from gaitrun.bench import time_interleaved

    calls = []

    def runner(name, seconds):
        def run(x):
            calls.append(name)
            clock.sleep(seconds)
            return x
        return run

    x = np.zeros((1, 2), np.float32)
    figures = time_interleaved({"fast": runner("f", 0.001), "slow": runner("s", 0.02)}, x, warmup=1, iterations=4,
                               min_time_s=0.06, block=2, settle=0, settle_s=0.0)
    # slow: 4 calls take 80 ms, more than 60: just the iterations; fast: ~1 ms a call, so about
    # 60 calls, after its first block of 2 in blocks of half of them (2 rounds as for 4 iterations)
    assert figures["slow"]["calls"] == 4
    assert 30 <= figures["fast"]["calls"] <= 61
    blocks = [(name, len(list(run))) for name, run in itertools.groupby(calls[2:])]  # after the warm-up
    assert blocks[:2] == [("f", 2), ("s", 2)] and blocks[3] == ("s", 2)
    assert blocks[2][0] == "f" and blocks[2][1] >= 15  # the fast one's later blocks: its calls over 2 rounds
    assert figures["fast"]["calls"] * figures["fast"]["mean_ms"] >= 55
    no_min = time_interleaved({"fast": runner("f", 0.001)}, x, warmup=1, iterations=4, block=2, settle=0,
                              settle_s=0.0)
    assert no_min["fast"]["calls"] == 4
