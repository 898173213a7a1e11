"""opengait_pkl adapter on tiny pickles in OpenGait's <subject>/<type>/<view>/*.pkl layout."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pytest
from conftest import model_inputs

from gaitrun.errors import DataError
from gaitrun.plugins.datasets import opengait_pkl

SHAPE = (4, 16, 11)  # N x H x W (OpenGait's CASIA-B is N x 64 x 44)


def frames(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, SHAPE, dtype=np.uint8)


def write_pkl(path: Path, value: object, protocol: int = pickle.DEFAULT_PROTOCOL) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as f:
        pickle.dump(value, f, protocol=protocol)


@pytest.fixture()
def root(tmp_path: Path) -> Path:
    base = tmp_path / "opengait"
    for s, subject in enumerate(("001", "002", "075")):
        for t, kind in enumerate(("nm-01", "bg-02")):
            for view in ("000", "090"):
                write_pkl(base / subject / kind / view / f"{view}.pkl", frames(100 * s + 10 * t),
                          protocol=2 + s)  # protocols 2, 3, 4: all must load
    return base


def scan(**params) -> list:
    return opengait_pkl.scan(opengait_pkl.Params(**params), cache_dir=Path("unused"), seed=0)


def load(sample, root: Path, **params) -> np.ndarray:
    return opengait_pkl.load(sample, opengait_pkl.Params(root=str(root), **params))


def test_scan_metadata_and_load(root: Path) -> None:
    samples = scan(root=str(root))
    assert len(samples) == 12 and [s.path for s in samples] == sorted(s.path for s in samples)
    s = samples[0]
    assert (s.label, s.subject, s.condition, s.view, s.sequence, s.split) == (
        "001", "001", "bg", "000", "bg-02", None)
    assert Path(s.path) == root / "001" / "bg-02" / "000"
    for sample, seed in ((samples[0], 10), (samples[-1], 200)):
        array = load(sample, root)
        assert array.dtype == np.uint8 and array.shape == SHAPE
        np.testing.assert_array_equal(array, frames(seed))
    (clip,) = model_inputs(array, modality="silhouette", kind="frame_set", frames=4, size=(16, 11))
    assert clip.shape == (4, 16, 11, 1)


def test_protocol_5_pickles_load(root: Path) -> None:
    sample = scan(root=str(root))[0]
    write_pkl(Path(sample.path) / "000.pkl", frames(7), protocol=5)
    np.testing.assert_array_equal(load(sample, root), frames(7))


def test_partition_sets_split_and_leaves_out_unlisted_subjects(root: Path, tmp_path: Path) -> None:
    partition = tmp_path / "CASIA-B.json"
    partition.write_text(json.dumps({"TRAIN_SET": ["001"], "TEST_SET": ["075"]}))
    samples = scan(root=str(root), partition=str(partition))
    assert {(s.subject, s.split) for s in samples} == {("001", "train"), ("075", "test")}
    assert len(scan(root=str(root), partition=str(partition), conditions=["nm"], views=[90])) == 2


def test_bad_partition_files(root: Path, tmp_path: Path) -> None:
    both = tmp_path / "both.json"
    both.write_text(json.dumps({"TRAIN_SET": ["001"], "TEST_SET": ["1"]}))
    with pytest.raises(DataError, match="both TRAIN_SET and TEST_SET") as err:
        scan(root=str(root), partition=str(both))
    assert err.value.path == str(both)
    broken = tmp_path / "broken.json"
    broken.write_text("{\"TRAIN_SET\": [")
    with pytest.raises(DataError) as err:
        scan(root=str(root), partition=str(broken))
    assert err.value.path == str(broken)
    with pytest.raises(DataError, match="does not exist"):
        scan(root=str(root), partition=str(tmp_path / "missing.json"))


def test_symlinked_pickle_outside_root_is_refused(root: Path, tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere" / "evil.pkl"
    write_pkl(outside, frames(1))
    link = root / "001" / "bg-02" / "000" / "000.pkl"
    link.unlink()
    link.symlink_to(outside)
    with pytest.raises(DataError) as err:
        load(scan(root=str(root))[0], root)
    assert err.value.path == str(link) and "outside data.params.root" in err.value.reason


def test_symlinked_view_folder_outside_root_is_refused(root: Path, tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere" / "090"
    write_pkl(outside / "090.pkl", frames(1))
    (root / "002" / "nm-01" / "180").symlink_to(outside, target_is_directory=True)
    sample = next(s for s in scan(root=str(root)) if s.view == "180")
    with pytest.raises(DataError, match="outside data.params.root"):
        load(sample, root)


def test_symlink_inside_root_is_fine(root: Path) -> None:
    samples = scan(root=str(root))
    link = Path(samples[0].path) / "000.pkl"
    link.unlink()
    link.symlink_to(Path(samples[-1].path) / "090.pkl")
    np.testing.assert_array_equal(load(samples[0], root), frames(200))


class _Opens:
    """Unpickling this would create a file: proof that code ran."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def test_pickle_that_runs_code_is_refused_without_running_it(root: Path, tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    sample = scan(root=str(root))[0]
    pkl = Path(sample.path) / "000.pkl"
    write_pkl(pkl, _Opens(marker))
    with pytest.raises(DataError, match="io.open, which is not part of a numpy array") as err:
        load(sample, root)
    assert err.value.path == str(pkl) and not marker.exists()


@pytest.mark.parametrize("bad", ["truncated", "float", "two_dims"])
def test_bad_pickles_name_the_file(root: Path, bad: str) -> None:
    sample = scan(root=str(root))[0]
    pkl = Path(sample.path) / "000.pkl"
    if bad == "truncated":
        pkl.write_bytes(pkl.read_bytes()[:30])
    else:
        write_pkl(pkl, frames(0).astype(np.float32) if bad == "float" else frames(0)[0])
    with pytest.raises(DataError) as err:
        load(sample, root)
    assert err.value.path == str(pkl)


def test_folder_without_the_wanted_pickle(root: Path) -> None:
    sample = scan(root=str(root))[0]
    with pytest.raises(DataError, match="file_index") as err:
        load(sample, root, file_index=1)
    assert err.value.path == sample.path
    (Path(sample.path) / "000.pkl").unlink()
    with pytest.raises(DataError, match="holds 0 .pkl"):
        load(sample, root)


def test_missing_or_empty_root(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="does not exist") as err:
        scan(root=str(tmp_path / "nope"))
    assert err.value.path == str(tmp_path / "nope")
    with pytest.raises(DataError, match="holds no") as err:
        scan(root=str(tmp_path))
    assert err.value.path == str(tmp_path)
