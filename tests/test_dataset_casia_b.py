"""casia_b adapter on a tiny CASIA-B tree written in the real <subject>/<walk>/<view>/*.png layout."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from gaitrun.errors import DataError
from gaitrun.plugins.datasets import casia_b

SUBJECTS = ("001", "002")
WALKS = ("nm-01", "bg-01", "cl-02")
VIEWS = ("000", "090")
FRAMES = 3


def write_sequence(folder: Path, frames: int = FRAMES, size: tuple[int, int] = (8, 6)) -> None:
    """PNG frames named like CASIA-B's, frame i filled with the value 10 * i (written in reverse)."""
    folder.mkdir(parents=True, exist_ok=True)
    subject, walk_a, walk_b, view = folder.parts[-3], *folder.parts[-2].split("-"), folder.parts[-1]
    for i in reversed(range(frames)):
        name = f"{subject}-{walk_a}-{walk_b}-{view}-{i + 1:03d}.png"
        assert cv2.imwrite(str(folder / name), np.full(size, 10 * i, np.uint8))


@pytest.fixture()
def root(tmp_path: Path) -> Path:
    for subject in SUBJECTS:
        for walk in WALKS:
            for view in VIEWS:
                write_sequence(tmp_path / "casia" / subject / walk / view)
    return tmp_path / "casia"


def scan(**params) -> list:
    return casia_b.scan(casia_b.Params(**params), cache_dir=Path("unused"), seed=0)


def test_scan_lists_one_sample_per_sequence_folder_with_metadata(root: Path) -> None:
    samples = scan(root=str(root))
    assert len(samples) == len(SUBJECTS) * len(WALKS) * len(VIEWS)
    assert [s.path for s in samples] == sorted(s.path for s in samples)
    first = samples[0]
    assert Path(first.path) == root / "001" / "bg-01" / "000"
    assert (first.label, first.subject, first.condition, first.view, first.sequence) == (
        "001", "001", "bg", "000", "bg-01")
    assert first.split is None and first.index is None
    assert {s.condition for s in samples} == {"nm", "bg", "cl"}
    assert scan(root=str(root)) == samples  # deterministic


def test_filters_accept_numbers_or_padded_ids(root: Path) -> None:
    picked = scan(root=str(root), subjects=[2], views=["090"], conditions=["nm", "cl"])
    assert [(s.subject, s.sequence, s.view) for s in picked] == [
        ("002", "cl-02", "090"), ("002", "nm-01", "090")]
    assert len(scan(root=str(root), subjects=["001"], views=[90])) == len(WALKS)


def test_load_returns_frames_sorted_by_name(root: Path) -> None:
    sample = scan(root=str(root))[0]
    frames = casia_b.load(sample, casia_b.Params(root=str(root)))
    assert frames.shape == (FRAMES, 8, 6) and frames.dtype == np.uint8
    assert frames[:, 0, 0].tolist() == [0, 10, 20]


def test_truncated_png_names_the_file(root: Path) -> None:
    png = sorted((root / "001" / "bg-01" / "000").glob("*.png"))[1]
    png.write_bytes(png.read_bytes()[:20])
    with pytest.raises(DataError) as err:
        casia_b.load(scan(root=str(root))[0], casia_b.Params(root=str(root)))
    assert err.value.path == str(png)


def test_empty_sequence_folder_names_the_folder(root: Path) -> None:
    empty = root / "001" / "bg-01" / "000"
    for png in empty.glob("*.png"):
        png.unlink()
    with pytest.raises(DataError) as err:
        casia_b.load(scan(root=str(root))[0], casia_b.Params(root=str(root)))
    assert err.value.path == str(empty)
    assert "no .png frames" in err.value.reason


def test_frames_of_different_sizes_name_the_folder(root: Path) -> None:
    folder = root / "002" / "nm-01" / "090"
    assert cv2.imwrite(str(folder / "002-nm-01-090-004.png"), np.zeros((9, 6), np.uint8))
    sample = next(s for s in scan(root=str(root)) if s.path == str(folder))
    with pytest.raises(DataError) as err:
        casia_b.load(sample, casia_b.Params(root=str(root)))
    assert err.value.path == str(folder) and "differ in size" in err.value.reason


def test_missing_empty_or_filtered_out_root(tmp_path: Path) -> None:
    with pytest.raises(DataError) as err:
        scan(root=str(tmp_path / "nope"))
    assert err.value.path == str(tmp_path / "nope")
    assert "does not exist" in err.value.reason and "data.params.root" in err.value.reason
    with pytest.raises(DataError, match="holds no"):
        scan(root=str(tmp_path))
    write_sequence(tmp_path / "001" / "nm-01" / "090")
    with pytest.raises(DataError, match="holds no"):
        scan(root=str(tmp_path), views=["180"])


def test_synthetic_generator_layout_feeds_the_preprocessing(tmp_path: Path) -> None:
    from conftest import model_inputs

    from gaitrun.data import synthetic

    root = synthetic.generate(tmp_path / "synthetic", subjects=2, views=[90], walks={"nm": 1, "bg": 1},
                              frames=4, size=(32, 24), seed=3, workers=1)
    samples = scan(root=str(root))
    assert [(s.subject, s.condition, s.view, s.sequence) for s in samples] == [
        ("001", "bg", "090", "bg-01"), ("001", "nm", "090", "nm-01"),
        ("002", "bg", "090", "bg-01"), ("002", "nm", "090", "nm-01")]
    raw = casia_b.load(samples[0], casia_b.Params(root=str(root)))
    assert raw.shape == (4, 32, 24) and raw.dtype == np.uint8
    (silhouettes,) = model_inputs(raw, modality="silhouette", kind="frame_set", frames=4, size=(16, 12))
    assert silhouettes.shape == (4, 16, 12, 1)
    (flow,) = model_inputs(raw, modality="optical_flow", kind="stack2d", frames=3, size=(16, 12))
    assert flow.shape == (16, 12, 6)
