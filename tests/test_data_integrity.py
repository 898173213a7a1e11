"""Data that cannot lie: each case was found with real or corrupted files, and each is
refused (or listed as a bad sample) here with real files -- a pressure channel beyond
float16, NaN sensor values, a truncated JPEG, an AVI cut short, a CASIA-B root one folder
off, dead generator temporaries."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from gaitrun.data import synthetic
from gaitrun.data.store import build_store
from gaitrun.errors import DataError
from gaitrun.plugins.datasets import casia_b, image_folder, uci_har, video_folder
from gaitrun.recipe.sections import Clip, DataBase

WINDOW = 16
SIGNALS = [f"{k}_{a}" for k in ("body_acc", "body_gyro", "total_acc") for a in "xyz"]


class HarData(DataBase):
    adapter: str = "uci_har"
    params: uci_har.Params


def _har(root: Path, rows: int = 4, poke: tuple[int, int, str] | None = None) -> Path:
    """A UCI-HAR-layout tree (train split only); ``poke`` = (signal, row, text) overwrites one value."""
    signals = root / "train" / "Inertial Signals"
    signals.mkdir(parents=True)
    for k, name in enumerate(SIGNALS):
        lines = [" ".join([f"{k + r / 100:.6e}"] * WINDOW) for r in range(rows)]
        if poke and poke[0] == k:
            values = lines[poke[1]].split()
            values[3] = poke[2]
            lines[poke[1]] = " ".join(values)
        (signals / f"{name}_train.txt").write_text("\n".join(lines) + "\n")
    (root / "train" / "y_train.txt").write_text("".join(f"{r % 2 + 1}\n" for r in range(rows)))
    (root / "train" / "subject_train.txt").write_text("".join(f"{r + 1}\n" for r in range(rows)))
    return root


def _har_store(root: Path, tmp: Path, **kw):
    data = HarData(params=uci_har.Params(root=str(root)), modality="inertial", clip=Clip(frames=WINDOW, size=(1, 9)),
                   cache="none", **kw)
    samples = uci_har.scan(data.params, cache_dir=tmp, seed=0)
    return samples, build_store(samples, uci_har.load, data, cache_dir=tmp / "cache", workers=1)


def test_pressure_beyond_float16_is_stored_exactly_in_float32(tmp_path):
    root = _har(tmp_path / "har", poke=(4, 2, "101325"))  # a barometer in Pa in channel 4
    samples, store = _har_store(root, tmp_path)
    assert store.frames.dtype == np.float32
    assert float(store.clip(2)[3, 4]) == 101325.0 and np.isfinite(np.asarray(store.frames)).all()


def test_float16_modality_refuses_values_beyond_its_range_naming_the_channel(tmp_path):
    from gaitrun.data.decode import check_values

    flow = np.zeros((3, 4, 4, 2), np.float32)
    flow[1, 2, 2, 1] = 1e6  # an optical-flow file in the wrong unit
    with pytest.raises(DataError, match=r"channel 1 reaches 1e\+06, beyond the float16 range") as info:
        check_values(flow, source="/data/a.h5", modality="optical_flow", dtype=np.dtype("float16"))
    assert info.value.path == "/data/a.h5"


@pytest.mark.parametrize("value", ["nan", "inf", "-inf"])
def test_nan_or_inf_samples_are_bad_samples(tmp_path, value):
    root = _har(tmp_path / "har", poke=(7, 1, value))
    with pytest.raises(DataError, match=r"NaN or infinite values \(channel 7, time step 3\)") as info:
        _har_store(root, tmp_path)
    assert info.value.path == str(root / "train")
    samples, store = _har_store(root, tmp_path, on_bad_sample="skip")
    assert [(s["index"], "NaN" in s["reason"]) for s in store.skipped] == [(1, True)]
    assert store.kept.tolist() == [0, 2, 3] and np.isfinite(np.asarray(store.frames)).all()


def test_truncated_jpeg_is_refused(tmp_path):
    image = tmp_path / "shoes" / "a" / "img.jpg"
    image.parent.mkdir(parents=True)
    rng = np.random.default_rng(0)
    cv2.imwrite(str(image), (rng.random((48, 40, 3)) * 255).astype(np.uint8))
    image.write_bytes(image.read_bytes()[: image.stat().st_size * 6 // 10])
    assert cv2.imread(str(image)) is not None  # OpenCV alone takes the half file for an image
    params = image_folder.Params(root=str(tmp_path / "shoes"))
    sample = image_folder.scan(params, cache_dir=tmp_path, seed=0)[0]
    with pytest.raises(DataError, match="truncated: it does not end with the JPG end-of-image marker") as info:
        image_folder.load(sample, params)
    assert info.value.path == str(image)


def test_avi_cut_to_60_percent_is_refused(tmp_path):
    video = tmp_path / "walk" / "a.avi"
    video.parent.mkdir()
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 10, (32, 24))
    rng = np.random.default_rng(0)
    for _ in range(8):
        writer.write((rng.random((24, 32, 3)) * 255).astype(np.uint8))
    writer.release()
    params = video_folder.Params(root=str(tmp_path))
    sample = video_folder.scan(params, cache_dir=tmp_path, seed=0)[0]
    assert len(video_folder.load(sample, params)) == 8  # whole: accepted
    video.write_bytes(video.read_bytes()[: video.stat().st_size * 6 // 10])
    with pytest.raises(DataError, match=r"only \d of the 8 frames its header announces") as info:
        video_folder.load(sample, params)
    assert info.value.path == str(video)


def _casia(root: Path) -> Path:
    folder = root / "001" / "nm-01" / "090"
    folder.mkdir(parents=True)
    frame = np.zeros((16, 12), np.uint8)
    frame[2:14, 4:8] = 255
    cv2.imwrite(str(folder / "001-nm-01-090-001.png"), frame)
    return root


def test_casia_root_one_folder_too_high_or_low_says_the_root_looks_wrong(tmp_path):
    _casia(tmp_path / "data" / "GaitDatasetB-silh")
    with pytest.raises(DataError, match="the root looks wrong: walk folders such as") as info:
        casia_b.scan(casia_b.Params(root=str(tmp_path / "data")), cache_dir=tmp_path, seed=0)
    assert str(tmp_path / "data" / "GaitDatasetB-silh") in str(info.value)
    assert "remove" not in str(info.value)
    with pytest.raises(DataError, match="the root looks wrong: it holds walk folders"):
        casia_b.scan(casia_b.Params(root=str(tmp_path / "data" / "GaitDatasetB-silh" / "001")),
                     cache_dir=tmp_path, seed=0)
    assert len(casia_b.scan(casia_b.Params(root=str(tmp_path / "data" / "GaitDatasetB-silh")),
                            cache_dir=tmp_path, seed=0)) == 1


def test_dead_generator_temporaries_are_removed_live_ones_kept(tmp_path):
    out = tmp_path / "gait"
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    dead_tmp = out.with_name(f"gait.tmp-{dead.pid}")  # its generator was killed
    live_tmp = out.with_name(f"gait.tmp-{os.getppid()}")  # another generator, still running
    for tmp in (dead_tmp, live_tmp):
        (tmp / "001").mkdir(parents=True)
    synthetic.generate(out, subjects=2, views=[90], walks={"nm": 1}, frames=2, size=(16, 16), seed=0, workers=1)
    assert not dead_tmp.exists() and live_tmp.exists()
    assert synthetic.is_complete(out, synthetic.describe(subjects=2, views=[90], walks={"nm": 1}, frames=2,
                                                         size=(16, 16), seed=0))
