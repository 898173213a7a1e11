"""uci_har adapter on a tiny copy of the 'UCI HAR Dataset' text-file layout."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from conftest import model_inputs

from gaitrun.data.records import Sample
from gaitrun.errors import DataError
from gaitrun.plugins.datasets import uci_har

WINDOW = 128
SIGNALS = [f"{k}_{a}" for k in ("body_acc", "body_gyro", "total_acc") for a in "xyz"]
ROWS = {"train": 6, "test": 4}
LABELS = "1 WALKING\n2 WALKING_UPSTAIRS\n3 WALKING_DOWNSTAIRS\n4 SITTING\n5 STANDING\n6 LAYING\n"


def write_split(root: Path, split: str, rows: int) -> None:
    """Signal k of window r holds k + r / 100 everywhere; activity r % 6 + 1; subject 10 + r % 2."""
    signals = root / split / "Inertial Signals"
    signals.mkdir(parents=True, exist_ok=True)
    for k, name in enumerate(SIGNALS):
        table = np.repeat((k + np.arange(rows) / 100)[:, None], WINDOW, axis=1)
        np.savetxt(signals / f"{name}_{split}.txt", table, fmt="%.6e")
    np.savetxt(root / split / f"y_{split}.txt", np.arange(rows) % 6 + 1, fmt="%d")
    np.savetxt(root / split / f"subject_{split}.txt", 10 + np.arange(rows) % 2, fmt="%d")


def write_tree(base: Path) -> Path:
    """The tiny dataset at ``base``: both splits (sharing subjects 10 and 11) and the labels."""
    for split, rows in ROWS.items():
        write_split(base, split, rows)
    (base / "activity_labels.txt").write_text(LABELS)
    return base


@pytest.fixture()
def root(tmp_path: Path) -> Path:
    return write_tree(tmp_path / "UCI HAR Dataset")


def scan(root: Path) -> list:
    return uci_har.scan(uci_har.Params(root=str(root)), cache_dir=Path("x"), seed=0)


def test_scan_one_sample_per_window(root: Path) -> None:
    samples = scan(root)
    assert len(samples) == sum(ROWS.values())
    test_first = samples[0]  # "test" sorts before "train"
    assert (test_first.path, test_first.index, test_first.split) == (str(root / "test"), 0, "test")
    train = [s for s in samples if s.split == "train"]
    assert [s.index for s in train] == list(range(ROWS["train"]))
    assert [s.label for s in train] == ["WALKING", "WALKING_UPSTAIRS", "WALKING_DOWNSTAIRS",
                                        "SITTING", "STANDING", "LAYING"]
    assert [s.subject for s in train[:3]] == ["10", "11", "10"]


def test_labels_are_ids_without_activity_labels(root: Path) -> None:
    (root / "activity_labels.txt").unlink()
    assert [s.label for s in scan(root)[:3]] == ["1", "2", "3"]


def test_load_returns_window_with_nine_channels_in_order(root: Path) -> None:
    sample = next(s for s in scan(root) if s.split == "train" and s.index == 3)
    window = uci_har.load(sample, uci_har.Params(root=str(root)))
    assert window.shape == (WINDOW, 9) and window.dtype == np.float32
    np.testing.assert_allclose(window[0], np.arange(9) + 0.03, rtol=1e-6)
    (model_input,) = model_inputs(window, modality="inertial", kind="inertial", frames=WINDOW, size=(1, 1))
    assert model_input.shape == (WINDOW, 9)


def test_files_are_read_once_until_they_change(root: Path) -> None:
    samples = scan(root)
    y = root / "train" / "y_train.txt"
    stat = y.stat()
    y.write_text("\n".join(["6"] * ROWS["train"]) + "\n")
    os.utime(y, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # same mtime: the cached copy is used
    assert scan(root) == samples
    os.utime(y, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    assert {s.label for s in scan(root) if s.split == "train"} == {"LAYING"}


def test_label_file_with_fewer_rows_names_it(root: Path) -> None:
    y = root / "train" / "y_train.txt"
    y.write_text("1\n2\n3\n")
    with pytest.raises(DataError) as err:
        scan(root)
    assert err.value.path == str(y)
    assert err.value.reason.startswith("has 3 rows, body_acc_x_train.txt has 6")


def test_short_signal_file_names_it(root: Path) -> None:
    short = root / "test" / "Inertial Signals" / "body_gyro_z_test.txt"
    short.write_text("\n".join(short.read_text().splitlines()[:2]) + "\n")
    with pytest.raises(DataError, match="has 2 rows, body_acc_x_test.txt has 4") as err:
        scan(root)
    assert err.value.path == str(short)


def test_bad_or_missing_files_name_them(root: Path) -> None:
    bad = root / "train" / "subject_train.txt"
    bad.write_text("1\nx\n1\n1\n1\n1\n")
    with pytest.raises(DataError, match="not a table of numbers") as err:
        scan(root)
    assert err.value.path == str(bad)
    missing = root / "test" / "Inertial Signals" / "total_acc_y_test.txt"
    missing.unlink()
    with pytest.raises(DataError, match="is missing") as err:
        uci_har.load(Sample(path=str(root / "test"), label="1", split="test", index=0),
                     uci_har.Params(root=str(root)))
    assert err.value.path == str(missing)


def test_missing_or_empty_root(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="does not exist") as err:
        scan(tmp_path / "nope")
    assert err.value.path == str(tmp_path / "nope")
    with pytest.raises(DataError, match="holds no train/ or test/") as err:
        scan(tmp_path)
    assert err.value.path == str(tmp_path)
    write_split(tmp_path, "train", 0)
    with pytest.raises(DataError, match="holds no windows"):
        scan(tmp_path)
