"""The serving parts that need no server: PSI drift statistics, the dynamic batcher, the gallery
file and tensor decoding."""

from __future__ import annotations

import asyncio
import io
import threading

import numpy as np
import pytest

from gaitrun.serve.batcher import Batcher
from gaitrun.serve.drift import DriftMonitor, psi, training_stats
from gaitrun.serve.gallery import Gallery
from gaitrun.serve.inputs import InputError, Spec, from_json, from_npy


def test_psi_is_zero_for_equal_shares_and_grows_with_the_shift():
    e = np.full(10, 0.1)
    assert psi(e, e) == 0
    shifted = np.r_[np.zeros(5), np.full(5, 0.2)]
    assert psi(shifted, e) > 1 and psi(np.r_[0.05, 0.15, np.full(8, 0.1)], e) == pytest.approx(0.0549, abs=1e-3)


def test_training_stats_bins_hold_the_training_values_in_equal_shares():
    x = np.random.default_rng(0).normal(3.0, 2.0, (400, 6, 5, 2)).astype(np.float32)
    stats = training_stats(x)
    assert stats["input_shape"] == [6, 5, 2] and len(stats["channels"]) == 2
    for c in stats["channels"]:
        assert c["mean"] == pytest.approx(3.0, abs=0.1) and c["std"] == pytest.approx(2.0, abs=0.1)
        np.testing.assert_allclose(c["shares"], 0.1, atol=0.002)


def test_drift_monitor_scores_a_sliding_window_of_inputs():
    rng = np.random.default_rng(1)
    monitor = DriftMonitor(training_stats(rng.normal(0, 1, (500, 8, 3))), window=50, threshold=0.25, min_inputs=20)
    monitor.update(rng.normal(0, 1, (10, 8, 3)))
    assert monitor.score() is None and not monitor.alert()
    monitor.update(rng.normal(0, 1, (40, 8, 3)))
    assert monitor.score() < 0.25 and not monitor.alert()
    monitor.update(rng.normal(1.5, 1, (50, 8, 3)))  # the window now holds shifted inputs only
    assert monitor.inputs == 50 and monitor.score() > 0.25 and monitor.alert()
    monitor.update(rng.normal(0, 1, (50, 8, 3)))
    assert not monitor.alert()


def test_batcher_batches_concurrent_requests_and_keeps_rows_in_place():
    seen: list[int] = []
    threads: set[str] = set()

    def run(x: np.ndarray) -> np.ndarray:
        seen.append(len(x))
        threads.add(threading.current_thread().name)
        return x.sum(axis=1, keepdims=True) * 2

    async def main() -> list[np.ndarray]:
        batcher = Batcher(run, max_batch=8, max_wait_ms=20)
        batcher.start()
        inputs = [np.full((1 + i % 3, 4), i, np.float32) for i in range(30)] + [np.ones((20, 4), np.float32)]
        outs = await asyncio.gather(*[batcher.submit(x) for x in inputs])
        await batcher.stop()
        for x, out in zip(inputs, outs, strict=True):
            np.testing.assert_array_equal(out, x.sum(axis=1, keepdims=True) * 2)
        return outs

    asyncio.run(main())
    assert max(seen) <= 8 and sum(seen) == sum(1 + i % 3 for i in range(30)) + 20
    assert len(seen) < 31 and len(threads) == 1 and next(iter(threads)).startswith("gaitrun-infer")


def test_gallery_file_round_trip_and_refuses_garbage(tmp_path):
    path = tmp_path / "g.npz"
    g = Gallery(path)
    g.enrol("a", np.array([1.0, 0.0], np.float32))
    g.enrol("b", np.array([0.0, 1.0], np.float32))
    g.enrol("a", np.array([0.6, 0.8], np.float32))
    again = Gallery(path)
    assert again.summary() == {"subjects": ["a", "b"], "walks": 3}
    assert [m["subject"] for m in again.identify(np.array([0.0, 1.0], np.float32), k=5)] == ["b", "a"]
    assert again.remove("a") == 2 and Gallery(path).summary() == {"subjects": ["b"], "walks": 1}
    path.write_bytes(b"not a gallery")
    with pytest.raises(Exception, match="is not a gallery file"):
        Gallery(path)


SPEC = Spec(input_shape=(2, 3), modality="inertial", layout="inertial", frames=2, size=(1, 3), stride=None,
            max_unzipped=1000)


def _npy(x: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, x, allow_pickle=True)
    return buf.getvalue()


def test_tensor_decoding_takes_only_finite_float32_of_the_model_shape():
    x = np.arange(12, dtype=np.float32).reshape(2, 2, 3)
    np.testing.assert_array_equal(from_npy(_npy(x), SPEC), x)
    np.testing.assert_array_equal(from_npy(_npy(np.asfortranarray(x)), SPEC), x)  # read without a copy
    np.testing.assert_array_equal(from_json(b'{"inputs": ' + str(x.tolist()).encode() + b"}", SPEC), x)
    for body in (_npy(x.astype(np.float64)), _npy(x[:, :1]), _npy(np.array([None], object)), b"", b"junk",
                 _npy(x)[:-4], _npy(x)[:40]):  # truncated data, truncated header
        with pytest.raises(InputError, match="expected"):
            from_npy(body, SPEC)
    for body in (b'{"inputs": [[[1, 2, "3"], [4, 5, 6]]]}', b'{"inputs": [[[true, 1, 1], [1, 1, 1]]]}',
                 b'{"inputs": [[[NaN, 1, 1], [1, 1, 1]]]}', b'[1, 2]', b'{"inputs": [[1, 2], [3]]}'):
        with pytest.raises(InputError, match="expected"):
            from_json(body, SPEC)
