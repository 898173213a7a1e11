"""TUM-GAID optical flow in Embedded-Gait's HDF5 layout: an index file plus one file per sample.

Layout (as prepared for Embedded-Gait / Marin-Jimenez et al.)::

    tfimdb_tum_gaid_N150_train_of25_60x60.h5      the index
    tfimdb_tum_gaid_N150_train_of25_60x60/         the per-sample files it lists
        <file>.h5                                  each holding ``data`` (H x W x 2T)

The index holds parallel arrays ``file`` (the sample file names; a dataset of strings or a
deepdish list group ``file/i0, i1 ...``), ``label`` (subject id), ``videoId``, ``gait``
(condition code), ``set`` (1 train, 2 validation, 3 test) and optionally ``cam``. Each
sample is a subsequence (e.g. 25 frames) of one video: ``label`` and ``subject`` are the
subject id, ``sequence`` the video id (group folds by it so that subsequences of one video
never fall on both sides), ``condition`` the gait code's name from ``conditions`` (TUM-GAID
names its walks N normal, B backpack, S coating shoes; unmapped codes stay as their number),
``view`` the camera if the index has ``cam``, ``split`` from ``set``.

Each sample file stores ``data`` as H x W x 2T scaled integers: channel ``2t`` is the
x-flow and ``2t + 1`` the y-flow of frame ``t`` (x/y interleaved per frame). They are
divided by ``compressFactor`` (a root attribute, as deepdish writes scalars, or a scalar
dataset; 1 if absent). ``load`` returns the frames time first, (T, H, W, 2) float32 with
``[..., 0]`` the x-flow; ``x.transpose(1, 2, 0, 3).reshape(H, W, 2 * T)`` gives back the
interleaved stack of Embedded-Gait's 2D CNN.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

import math
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from gaitrun.data.records import Sample
from gaitrun.errors import DataError

from ._common import ROOT_HINT, require_samples

MODALITIES = {"optical_flow"}
KIND = "sequence"

INDEX_HINT = "check data.params.index"
SET_SPLITS = {1: "train", 2: "validation", 3: "test"}
REQUIRED_COLUMNS = ("file", "label", "videoId", "gait")


class Params(BaseModel):
    """Which index to read, where its sample files are and how to name the gait codes."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    index: str = Field(..., description="the index .h5 file (arrays file, label, videoId, gait, set)")
    root: str | None = Field(None, description="folder of the per-sample .h5 files; null: the "
                                               "folder named like the index (without .h5) next to "
                                               "it if there is one, else the index's folder")
    conditions: dict[int, str] = Field(
        {0: "normal", 1: "backpack", 2: "shoes"},
        description="gait code -> condition name (TUM-GAID: N normal, B backpack, S shoes)")
    skip_empty: bool = Field(False, description="open every sample file during scan and leave out "
                                                "those whose data is empty (~0.3 ms per file)")


def scan(params: Params, *, cache_dir: Path, seed: int) -> list[Sample]:
    """One sample per row of the index, sorted by path."""
    index = Path(params.index).expanduser().resolve()
    columns = _read_index(index)
    root = _sample_root(index, params.root)
    samples = [_sample(columns, row, root, params) for row in range(len(columns["file"]))]
    if params.skip_empty:
        samples = [s for s in samples if math.prod(_data_shape(Path(s.path))) > 0]
    return require_samples(samples, index, "samples with data (its file array is empty or every "
                                           "listed file is empty)", hint=INDEX_HINT)


def load(sample: Sample, params: Params) -> np.ndarray:
    """The sample's optical flow as (T, H, W, 2) float32, divided by its compressFactor."""
    import h5py
    import numpy as np

    path = Path(sample.path)
    height, width, channels = _flow_shape(path)
    with h5py.File(path, "r") as f:
        flow = np.asarray(f["data"][()], dtype=np.float32) / _compress_factor(f, path)
    return flow.reshape(height, width, channels // 2, 2).transpose(2, 0, 1, 3)


def _sample(columns: dict[str, np.ndarray], row: int, root: Path, params: Params) -> Sample:
    """The ``Sample`` for one row of the index."""
    subject = str(int(columns["label"][row]))
    code = int(columns["gait"][row])
    split = None if "set" not in columns else SET_SPLITS.get(int(columns["set"][row]))
    view = None if "cam" not in columns else str(int(columns["cam"][row]))
    return Sample(path=str(root / columns["file"][row]), label=subject, subject=subject,
                  condition=params.conditions.get(code, str(code)), view=view,
                  sequence=str(int(columns["videoId"][row])), split=split)


def _sample_root(index: Path, root: str | None) -> Path:
    """The folder of the per-sample files (see ``Params.root``)."""
    if root is not None:
        folder = Path(root).expanduser().resolve()
        if not folder.is_dir():
            raise DataError(str(folder), f"folder of sample files does not exist; {ROOT_HINT}")
        return folder
    beside = index.with_suffix("")
    return beside if beside.is_dir() else index.parent


def _read_index(index: Path) -> dict[str, np.ndarray]:
    """The index's columns (``file`` as str, the others as numbers), checked for equal length."""
    import h5py

    if not index.is_file():
        raise DataError(str(index), f"index file does not exist; {INDEX_HINT}")
    try:
        with h5py.File(index, "r") as f:
            missing = [name for name in REQUIRED_COLUMNS if name not in f]
            if missing:
                raise DataError(str(index), f"lacks the array(s) {', '.join(missing)}; an "
                                            "Embedded-Gait index holds file, label, videoId, gait, set")
            columns = {name: _column(f[name]) for name in (*REQUIRED_COLUMNS, "set", "cam") if name in f}
    except OSError as exc:
        raise DataError(str(index), f"cannot be read as HDF5 ({exc}); {INDEX_HINT}") from exc
    _check_lengths(index, columns)
    bad_sets = sorted({int(code) for code in columns.get("set", [])} - set(SET_SPLITS))
    if bad_sets:
        raise DataError(str(index), f"has set codes {bad_sets}; expected 1 (train), 2 (validation), 3 (test)")
    return columns


def _column(node: Any) -> np.ndarray:
    """One index column: a dataset, or a deepdish list group whose items are ``i0``, ``i1`` ...

    deepdish stores a list of strings as a group with one attribute (or dataset) per item.
    """
    import h5py
    import numpy as np

    if isinstance(node, h5py.Group):
        items = {**dict(node.attrs), **{k: v[()] for k, v in node.items()}}
        items = {int(k[1:]): v for k, v in items.items() if k[:1] == "i" and k[1:].isdigit()}
        values = [items[i] for i in sorted(items)]
    else:
        values = list(np.atleast_1d(node[()]))
    if values and isinstance(values[0], (bytes, np.bytes_, str, np.str_)):
        return np.array([v.decode() if isinstance(v, bytes) else str(v) for v in values], dtype=object)
    return np.asarray(values).reshape(-1)


def _check_lengths(index: Path, columns: dict[str, np.ndarray]) -> None:
    """``DataError`` naming ``index`` if its columns do not all have one entry per sample."""
    lengths = {name: len(values) for name, values in columns.items()}
    if len(set(lengths.values())) > 1:
        listing = ", ".join(f"{name} {n}" for name, n in lengths.items())
        raise DataError(str(index), f"has arrays of different lengths ({listing}); rebuild the index")


def _data_shape(path: Path) -> tuple[int, ...]:
    """The shape of a sample file's numeric ``data``; ``DataError`` if it is missing or not numbers."""
    import h5py

    if not path.is_file():
        raise DataError(str(path), f"does not exist, but the index lists it; {ROOT_HINT} "
                                   "(the folder of the sample files)")
    try:
        with h5py.File(path, "r") as f:
            data = f.get("data")
            if not isinstance(data, h5py.Dataset) or data.dtype.kind not in "iuf":
                raise DataError(str(path), "has no numeric 'data' array; rebuild this sample file")
            return data.shape
    except OSError as exc:
        raise DataError(str(path), f"cannot be read as HDF5 ({exc}); rebuild this sample file") from exc


def _flow_shape(path: Path) -> tuple[int, int, int]:
    """The (H, W, 2T) shape of a sample file's data; ``DataError`` if it is empty or not H x W x 2T."""
    shape = _data_shape(path)
    if math.prod(shape) == 0:
        raise DataError(str(path), f"holds an empty data array {shape}; set "
                                   "data.params.skip_empty: true to leave such files out")
    if len(shape) != 3 or shape[-1] % 2:
        raise DataError(str(path), f"holds data of shape {shape}; expected H x W x 2T "
                                   "(x and y flow for each of T frames)")
    return shape


def _compress_factor(f: Any, path: Path) -> float:
    """``compressFactor`` from the root attributes or a scalar dataset; 1 if absent."""
    import numpy as np

    if "compressFactor" in f.attrs:
        value = f.attrs["compressFactor"]
    elif "compressFactor" in f:
        value = f["compressFactor"][()]
    else:
        value = 1
    factor = float(np.asarray(value).reshape(-1)[0])
    if not factor > 0:
        raise DataError(str(path), f"has compressFactor {factor}; it must be positive")
    return factor
