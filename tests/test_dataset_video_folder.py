"""video_folder adapter on tiny videos written by cv2.VideoWriter in the <class>/<video> layout."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import model_inputs

from gaitrun.errors import DataError
from gaitrun.plugins.datasets import video_folder

H, W, FRAMES = 24, 32, 7
CODECS = {".avi": "MJPG", ".mp4": "mp4v"}


def write_video(path: Path, frames: int = FRAMES) -> None:
    """Frame i: red (RGB) on the left half, grey level 30 * i on the right half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*CODECS[path.suffix.lower()]), 10, (W, H))
    assert writer.isOpened()
    for i in range(frames):
        rgb = np.zeros((H, W, 3), np.uint8)
        rgb[:, : W // 2, 0] = 220
        rgb[:, W // 2:] = 30 * i
        writer.write(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    writer.release()


def scan(root: Path, **params) -> list:
    return video_folder.scan(video_folder.Params(root=str(root), **params), cache_dir=Path("x"), seed=0)


def load(sample, root: Path, **params) -> np.ndarray:
    return video_folder.load(sample, video_folder.Params(root=str(root), **params))


def grey_levels(clip: np.ndarray) -> list[int]:
    return [int(round(frame[:, 3 * W // 4:].mean() / 30)) for frame in clip]


@pytest.fixture()
def root(tmp_path: Path) -> Path:
    write_video(tmp_path / "walk" / "p01_walk.avi")
    write_video(tmp_path / "walk" / "p02_walk.mp4")
    write_video(tmp_path / "run" / "p01_run.AVI")
    (tmp_path / "run" / "notes.txt").write_text("not a video")
    return tmp_path


def test_scan_labels_and_sequences(root: Path) -> None:
    samples = scan(root)
    assert [(s.label, s.sequence, s.split, Path(s.path).suffix) for s in samples] == [
        ("run", "p01_run", None, ".AVI"), ("walk", "p01_walk", None, ".avi"), ("walk", "p02_walk", None, ".mp4")]


def test_split_layout(tmp_path: Path) -> None:
    write_video(tmp_path / "Train" / "walk" / "a.avi", frames=2)
    write_video(tmp_path / "Test" / "walk" / "b.avi", frames=2)
    assert [(s.split, s.label) for s in scan(tmp_path)] == [("test", "walk"), ("train", "walk")]


@pytest.mark.parametrize("suffix", [".avi", ".mp4"])
def test_load_decodes_every_frame_as_rgb(root: Path, suffix: str) -> None:
    sample = next(s for s in scan(root) if s.path.endswith(suffix) and s.label == "walk")
    clip = load(sample, root)
    assert clip.shape == (FRAMES, H, W, 3) and clip.dtype == np.uint8
    left = clip[:, :, : W // 4].reshape(-1, 3).mean(axis=0)
    assert left[0] > 180 and left[1] < 40 and left[2] < 40  # red arrives in channel 0
    assert grey_levels(clip) == list(range(FRAMES))
    (window,) = model_inputs(clip, modality="rgb", kind="clip3d", frames=FRAMES, size=(12, 16))
    assert window.shape == (FRAMES, 12, 16, 3)


def test_max_frames_samples_uniformly(root: Path) -> None:
    sample = scan(root)[0]
    clip = load(sample, root, max_frames=3)
    assert clip.shape == (3, H, W, 3)
    assert grey_levels(clip) == [0, 3, 6]
    assert load(sample, root, max_frames=50).shape[0] == FRAMES


def test_video_without_frames_names_the_file(tmp_path: Path) -> None:
    write_video(tmp_path / "walk" / "empty.avi", frames=0)
    (tmp_path / "walk" / "zero_bytes.mp4").write_bytes(b"")
    empty, zero_bytes = scan(tmp_path)
    for sample, reason in ((empty, "no frame could be decoded"), (zero_bytes, "cannot be opened")):
        with pytest.raises(DataError, match=reason) as err:
            load(sample, tmp_path)
        assert err.value.path == sample.path


def test_missing_or_empty_root(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="does not exist") as err:
        scan(tmp_path / "nope")
    assert err.value.path == str(tmp_path / "nope")
    (tmp_path / "walk").mkdir()
    with pytest.raises(DataError, match="holds no videos") as err:
        scan(tmp_path)
    assert err.value.path == str(tmp_path)
