"""synthetic_imu adapter: hip-worn IMU windows derived from the synthetic walking bodies."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from gaitrun.data.preprocess import to_clip
from gaitrun.errors import DataError
from gaitrun.plugins.datasets import synthetic_imu

SMALL = synthetic_imu.Params(subjects=3, walks={"nm": 2, "cl": 1}, windows_per_walk=2)


def scan(cache: Path, params: synthetic_imu.Params = SMALL, seed: int = 7) -> list:
    return synthetic_imu.scan(params, cache_dir=cache, seed=seed)


def windows(samples: list) -> np.ndarray:
    return np.stack([synthetic_imu.load(s, SMALL) for s in samples])


def test_scan_lists_every_window_with_its_metadata(tmp_path: Path) -> None:
    samples = scan(tmp_path)
    assert len(samples) == 3 * 3 * 2
    first, last = samples[0], samples[-1]
    assert (first.label, first.subject, first.condition, first.sequence, first.index) == ("001", "001", "nm", "nm-01", 0)
    assert (last.label, last.condition, last.sequence, last.extra["window"]) == ("003", "cl", "cl-01", 1)
    assert [s.index for s in samples] == list(range(len(samples)))
    assert Path(first.path).parent == tmp_path / "synthetic_imu" and Path(first.path).is_file()


def test_windows_are_9_channel_sensor_readings(tmp_path: Path) -> None:
    x = windows(scan(tmp_path))
    assert x.shape == (18, 128, 9) and x.dtype == np.float32 and np.isfinite(x).all()
    body, gyro, total = x[..., 0:3], x[..., 3:6], x[..., 6:9]
    gravity = total - body  # one accelerometer: the same noise in both, so exactly gravity remains
    assert np.allclose(np.linalg.norm(gravity, axis=-1), 1.0, atol=1e-4)
    assert np.allclose(gravity.mean(axis=(0, 1)), [0, 0, 1], atol=0.15)  # mostly up, tilted a little
    assert abs(body.mean()) < 0.05 and 0.05 < body.std() < 2  # walking: zero mean, a fraction of g
    assert 0.01 < gyro.std() < 2  # rad/s
    assert to_clip(x[0], modality="inertial", size=(1, 9)).shape == (128, 9)


def test_same_seed_same_data_other_seed_other_data(tmp_path: Path) -> None:
    a = windows(scan(tmp_path / "a"))
    assert np.array_equal(a, windows(scan(tmp_path / "b")))
    assert not np.allclose(a, windows(scan(tmp_path / "c", seed=8)))
    fixed = synthetic_imu.Params(subjects=3, walks={"nm": 2, "cl": 1}, windows_per_walk=2, seed=7)
    assert np.array_equal(a, windows(scan(tmp_path / "d", fixed, seed=99)))


def test_second_scan_reuses_the_file(tmp_path: Path) -> None:
    file = Path(scan(tmp_path)[0].path)
    stamp = file.stat().st_mtime_ns
    assert scan(tmp_path)[0].path == str(file) and file.stat().st_mtime_ns == stamp
    assert [p.name for p in file.parent.iterdir()] == [file.name]  # no temporary files left


def test_subjects_differ_more_than_walks_of_one_subject(tmp_path: Path) -> None:
    """Identity lives in the gait: a subject's walks resemble each other more than other subjects'."""
    params = synthetic_imu.Params(subjects=4, walks={"nm": 2}, windows_per_walk=4)
    samples = scan(tmp_path, params)
    x = np.stack([synthetic_imu.load(s, params) for s in samples])
    spectra = np.abs(np.fft.rfft(x, axis=1))[:, 1:20].reshape(len(x), -1)  # cadence and harmonics
    walks = np.stack([spectra[i:i + 4].mean(0) for i in range(0, len(x), 4)])  # (subject, walk) order
    dist = np.linalg.norm(walks[:, None] - walks[None], axis=-1)
    same = [dist[2 * s, 2 * s + 1] for s in range(4)]
    other = [dist[i, j] for i in range(8) for j in range(8) if i // 2 != j // 2]
    assert np.mean(same) < np.mean(other)


def test_load_reports_a_damaged_or_changed_file(tmp_path: Path) -> None:
    samples = scan(tmp_path)
    Path(samples[0].path).write_bytes(b"not an npz")
    with pytest.raises(DataError, match="delete it and run again"):
        synthetic_imu.load(samples[0], SMALL)
    fresh = scan(tmp_path / "fresh")
    with pytest.raises(DataError, match="not row 99"):
        synthetic_imu.load(type(fresh[0])(path=fresh[0].path, label="001", index=99), SMALL)


def test_params_validate() -> None:
    assert synthetic_imu.Params().model_dump()["walks"] == {"nm": 6, "bg": 2, "cl": 2}
    for bad in ({"subjects": 1}, {"walks": {"xx": 1}}, {"windows_per_walk": 0}, {"rate": 50}):
        with pytest.raises(ValueError):
            synthetic_imu.Params(**bad)
