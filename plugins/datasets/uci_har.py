"""UCI HAR inertial windows: one sample per row of the train / test text files.

Layout (the "UCI HAR Dataset" folder as downloaded)::

    <root>/activity_labels.txt                         optional: "1 WALKING" ...
    <root>/{train,test}/y_{split}.txt                  activity id (1-6) per window
    <root>/{train,test}/subject_{split}.txt            subject id (1-30) per window
    <root>/{train,test}/Inertial Signals/{body_acc,body_gyro,total_acc}_{x,y,z}_{split}.txt
                                                       one window (128 readings at 50 Hz) per row

``label`` is the activity's name from ``activity_labels.txt`` (its id without that file),
``subject`` the subject id, ``split`` ``train`` / ``test``, ``path`` the split folder and
``index`` the row. ``load`` returns (128, 9) float32 with the channels in the order
body_acc x, y, z, body_gyro x, y, z, total_acc x, y, z. Each split's text files are read
once per process and kept in memory (re-read when a file's modification time changes).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from gaitrun.data.records import Sample
from gaitrun.errors import DataError

from ._common import ROOT_HINT, existing_root, require_samples

MODALITIES = {"inertial"}
KIND = "inertial"

SPLITS = ("train", "test")
SIGNALS = tuple(f"{kind}_{axis}" for kind in ("body_acc", "body_gyro", "total_acc") for axis in "xyz")


class Params(BaseModel):
    """Where the UCI HAR dataset is."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    root: str = Field(..., description="the 'UCI HAR Dataset' folder (holding train/ and test/)")


@dataclass(frozen=True)
class _Split:
    """One split's contents: windows (N, 128, 9) float32, activity and subject ids (N,)."""

    windows: np.ndarray
    activities: np.ndarray
    subjects: np.ndarray


# split folder -> (modification times of its files, contents)
_CACHE: dict[str, tuple[tuple[int, ...], _Split]] = {}


def scan(params: Params, *, cache_dir: Path, seed: int) -> list[Sample]:
    """One sample per window of each split folder present, sorted by (split folder, row)."""
    root = existing_root(params.root, "UCI HAR dataset")
    split_dirs = [(split, root / split) for split in SPLITS if (root / split).is_dir()]
    if not split_dirs:
        raise DataError(str(root), f"holds no train/ or test/ folder; {ROOT_HINT}")
    names = _activity_names(root / "activity_labels.txt")
    samples = []
    for split, folder in split_dirs:
        data = _read_split(folder, split)
        samples += [Sample(path=str(folder), label=names.get(int(activity), str(int(activity))),
                           subject=str(int(subject)), split=split, index=row)
                    for row, (activity, subject) in enumerate(zip(data.activities, data.subjects, strict=True))]
    return require_samples(samples, root, "windows (its y_<split>.txt files are empty)")


def load(sample: Sample, params: Params) -> np.ndarray:
    """The window at row ``sample.index`` of its split as (128, 9) float32."""
    windows = _read_split(Path(sample.path), sample.split or Path(sample.path).name).windows
    if sample.index is None or not 0 <= sample.index < len(windows):
        raise DataError(sample.path, f"has {len(windows)} windows, not row {sample.index}; the "
                                     "files changed since the scan: run again")
    return windows[sample.index].copy()


def _split_files(folder: Path, split: str) -> list[Path]:
    """The split's nine signal files, then y_<split>.txt and subject_<split>.txt."""
    signals = [folder / "Inertial Signals" / f"{name}_{split}.txt" for name in SIGNALS]
    return [*signals, folder / f"y_{split}.txt", folder / f"subject_{split}.txt"]


def _read_split(folder: Path, split: str) -> _Split:
    """A split's contents, from the cache when no file changed since it was read."""
    import numpy as np

    files = _split_files(folder, split)
    for file in files:
        if not file.is_file():
            raise DataError(str(file), f"is missing; a UCI HAR {split}/ folder holds y_{split}.txt, "
                                       f"subject_{split}.txt and 'Inertial Signals/' with 9 signal files")
    stamp = tuple(file.stat().st_mtime_ns for file in files)
    cached = _CACHE.get(str(folder))
    if cached is not None and cached[0] == stamp:
        return cached[1]
    tables = [_read_table(file) for file in files]
    _check_shapes(files, tables)
    contents = _Split(windows=np.stack(tables[:-2], axis=-1), activities=tables[-2][:, 0].astype(int),
                      subjects=tables[-1][:, 0].astype(int))
    _CACHE[str(folder)] = (stamp, contents)
    return contents


def _read_table(file: Path) -> np.ndarray:
    """A whitespace-separated text file of numbers as a 2-D float32 array."""
    import warnings

    import numpy as np

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # an empty file: caught by _check_shapes
            return np.loadtxt(file, dtype=np.float32, ndmin=2)
    except ValueError as exc:
        raise DataError(str(file), f"is not a table of numbers ({exc}); restore the file") from exc


def _check_shapes(files: list[Path], tables: list[np.ndarray]) -> None:
    """``DataError`` naming the odd file if the row counts differ or a table has a wrong width."""
    rows = Counter(len(t) for t in tables)
    usual = rows.most_common(1)[0][0]
    reference = next(f for f, t in zip(files, tables, strict=True) if len(t) == usual)
    for file, table in zip(files, tables, strict=True):
        if len(table) != usual:
            raise DataError(str(file), f"has {len(table)} rows, {reference.name} has {usual}; every "
                                       "file of a split holds one row per window")
    width = tables[0].shape[1]
    for file, table in zip(files, tables, strict=True):
        expected = 1 if file.parent.name != "Inertial Signals" else width
        if table.shape[1] != expected:
            raise DataError(str(file), f"has {table.shape[1]} values per row, expected {expected}")


def _activity_names(file: Path) -> dict[int, str]:
    """Activity id -> name from ``activity_labels.txt``; empty if the file is absent."""
    if not file.is_file():
        return {}
    names = {}
    for number, line in enumerate(file.read_text().splitlines(), start=1):
        parts = line.split(maxsplit=1)
        if not parts:
            continue
        if len(parts) != 2 or not parts[0].isdigit():
            raise DataError(str(file), f"line {number} is {line!r}; expected '<id> <name>', e.g. '1 WALKING'")
        names[int(parts[0])] = parts[1].strip()
    return names
