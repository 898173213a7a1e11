"""tum_gaid_h5 adapter on a tiny index + per-sample HDF5 files in Embedded-Gait's layout."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest
from conftest import model_inputs

from gaitrun.errors import DataError
from gaitrun.plugins.datasets import tum_gaid_h5

H, W, T = 6, 5, 3
NAME = "tfimdb_tum_gaid_N150_train_of25_60x60"
# file, label, videoId, gait, set, cam
ROWS = [
    ("p001-n01-000.h5", 1, 11, 0, 1, 0),
    ("p001-b01-000.h5", 1, 12, 1, 2, 0),
    ("p002-s01-000.h5", 2, 21, 2, 3, 90),
    ("p002-s01-001.h5", 2, 21, 2, 3, 90),
]


def flow_stack(scale: float) -> np.ndarray:
    """H x W x 2T integers whose channel c holds c * scale (so x/y order can be checked)."""
    return np.broadcast_to(np.arange(2 * T) * scale, (H, W, 2 * T)).astype(np.int16)


def write_sample(path: Path, factor_as: str = "attr", data: np.ndarray | None = None) -> None:
    with h5py.File(path, "w") as f:
        f.create_dataset("data", data=flow_stack(100) if data is None else data)
        if factor_as == "attr":
            f.attrs["compressFactor"] = 100
        elif factor_as == "dataset":
            f.create_dataset("compressFactor", data=100)


def write_index(path: Path, rows=ROWS, *, deepdish: bool = False, extra: bool = True) -> None:
    """The index; ``deepdish=True`` stores ``file`` as deepdish does a list (group, attrs i0 ...)."""
    files, labels, videos, gaits, sets, cams = zip(*rows, strict=True) if rows else ([],) * 6
    with h5py.File(path, "w") as f:
        if deepdish:
            group = f.create_group("file")
            for i, name in enumerate(files):
                group.attrs[f"i{i}"] = name
        else:
            f.create_dataset("file", data=list(files), dtype=h5py.string_dtype())
        for key, values in (("label", labels), ("videoId", videos), ("gait", gaits)):
            f.create_dataset(key, data=np.array(values, dtype=np.int64))
        if extra:
            f.create_dataset("set", data=np.array(sets, dtype=np.int64))
            f.create_dataset("cam", data=np.array(cams, dtype=np.int64))
        f.attrs["compressFactor"] = 100


@pytest.fixture()
def index(tmp_path: Path) -> Path:
    folder = tmp_path / NAME
    folder.mkdir()
    for (name, *_), factor_as in zip(ROWS, ("attr", "dataset", "attr", "attr"), strict=True):
        write_sample(folder / name, factor_as)
    write_index(tmp_path / f"{NAME}.h5")
    return tmp_path / f"{NAME}.h5"


def scan(**params) -> list:
    return tum_gaid_h5.scan(tum_gaid_h5.Params(**params), cache_dir=Path("unused"), seed=0)


def load(sample, index: Path, **params) -> np.ndarray:
    return tum_gaid_h5.load(sample, tum_gaid_h5.Params(index=str(index), **params))


def test_scan_reads_index_metadata(index: Path) -> None:
    samples = scan(index=str(index))
    assert [Path(s.path) for s in samples] == sorted(index.with_suffix("") / r[0] for r in ROWS)
    by_file = {Path(s.path).name: s for s in samples}
    s = by_file["p001-b01-000.h5"]
    assert (s.label, s.subject, s.condition, s.view, s.sequence, s.split) == (
        "1", "1", "backpack", "0", "12", "validation")
    assert by_file["p001-n01-000.h5"].split == "train"
    assert {by_file[n].condition for n in ("p002-s01-000.h5", "p002-s01-001.h5")} == {"shoes"}
    assert by_file["p002-s01-001.h5"].split == "test" and by_file["p002-s01-001.h5"].view == "90"


def test_conditions_mapping_and_unmapped_codes(index: Path) -> None:
    samples = scan(index=str(index), conditions={0: "N", 1: "B"})
    assert sorted({s.condition for s in samples}) == ["2", "B", "N"]


def test_deepdish_list_index_without_set_and_cam(tmp_path: Path, index: Path) -> None:
    other = tmp_path / "other.h5"
    write_index(other, deepdish=True, extra=False)
    samples = scan(index=str(other), root=str(index.with_suffix("")))
    assert sorted(Path(s.path).name for s in samples) == sorted(r[0] for r in ROWS)
    assert {s.split for s in samples} == {None} and {s.view for s in samples} == {None}


def test_default_root_is_the_index_folder_without_a_sibling(tmp_path: Path) -> None:
    write_index(tmp_path / "index.h5", rows=ROWS[:1])
    write_sample(tmp_path / ROWS[0][0])
    (sample,) = scan(index=str(tmp_path / "index.h5"))
    assert Path(sample.path) == tmp_path / ROWS[0][0]
    assert load(sample, tmp_path / "index.h5").shape == (T, H, W, 2)


def test_load_divides_by_compress_factor_and_splits_x_y(index: Path) -> None:
    for sample in scan(index=str(index))[:2]:  # attribute and dataset compressFactor
        flow = load(sample, index)
        assert flow.shape == (T, H, W, 2) and flow.dtype == np.float32
        np.testing.assert_allclose(flow[:, 0, 0, 0], [0, 2, 4])  # x-flow: channels 0, 2, 4
        np.testing.assert_allclose(flow[:, 0, 0, 1], [1, 3, 5])  # y-flow: channels 1, 3, 5
    restacked = flow.transpose(1, 2, 0, 3).reshape(H, W, 2 * T)
    np.testing.assert_allclose(restacked * 100, flow_stack(100))
    (stack,) = model_inputs(flow, modality="optical_flow", kind="stack2d", frames=T, size=(H, W))
    np.testing.assert_allclose(stack, restacked, rtol=1e-3)  # Embedded-Gait's order (float16 store)


def test_missing_compress_factor_means_one(index: Path) -> None:
    sample = scan(index=str(index))[0]
    write_sample(Path(sample.path), factor_as="none", data=flow_stack(1))
    np.testing.assert_allclose(load(sample, index)[:, 0, 0, 0], [0, 2, 4])


@pytest.mark.parametrize("bad", ["missing", "garbage", "no_data", "odd_channels", "two_dims", "empty"])
def test_bad_sample_files_name_the_file(index: Path, bad: str) -> None:
    sample = scan(index=str(index))[0]
    path = Path(sample.path)
    if bad == "missing":
        path.unlink()
    elif bad == "garbage":
        path.write_bytes(b"not an hdf5 file")
    elif bad == "no_data":
        with h5py.File(path, "w") as f:
            f.create_dataset("flow", data=flow_stack(1))
    else:
        data = {"odd_channels": np.zeros((H, W, 5)), "two_dims": np.zeros((H, W)),
                "empty": np.zeros((0,))}[bad]
        write_sample(path, data=data)
    with pytest.raises(DataError) as err:
        load(sample, index)
    assert err.value.path == str(path)


def test_skip_empty_leaves_out_empty_files(index: Path) -> None:
    sample = scan(index=str(index))[0]
    write_sample(Path(sample.path), data=np.zeros((0,)))
    kept = scan(index=str(index), skip_empty=True)
    assert len(kept) == len(ROWS) - 1 and sample not in kept


def test_bad_index_files_name_the_index(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="does not exist"):
        scan(index=str(tmp_path / "missing.h5"))
    uneven = tmp_path / "uneven.h5"
    write_index(uneven)
    with h5py.File(uneven, "a") as f:
        del f["label"]
        f.create_dataset("label", data=np.array([1, 2]))
    with pytest.raises(DataError, match="different lengths") as err:
        scan(index=str(uneven))
    assert err.value.path == str(uneven)
    with h5py.File(uneven, "a") as f:
        del f["gait"]
    with pytest.raises(DataError, match="lacks the array"):
        scan(index=str(uneven))
    bad_set = tmp_path / "bad_set.h5"
    write_index(bad_set, rows=[(*ROWS[0][:4], 7, 0)])
    with pytest.raises(DataError, match="set codes"):
        scan(index=str(bad_set))
    not_h5 = tmp_path / "not.h5"
    not_h5.write_text("hello")
    with pytest.raises(DataError, match="HDF5") as err:
        scan(index=str(not_h5))
    assert err.value.path == str(not_h5)


def test_empty_index_and_missing_root(tmp_path: Path) -> None:
    empty = tmp_path / "empty.h5"
    write_index(empty, rows=[])
    with pytest.raises(DataError, match="holds no samples"):
        scan(index=str(empty))
    write_index(tmp_path / "index.h5")
    with pytest.raises(DataError, match="does not exist") as err:
        scan(index=str(tmp_path / "index.h5"), root=str(tmp_path / "nope"))
    assert err.value.path == str(tmp_path / "nope")
