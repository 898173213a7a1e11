"""OpenGait's preprocessed pickles: one sample per <subject>/<type>/<view> folder of .pkl files.

Layout (what OpenGait's ``pretreatment.py`` writes)::

    <root>/<subject>/<type>/<view>/<anything>.pkl    e.g. <root>/001/nm-01/090/090.pkl

each pickle an N x H x W uint8 array of silhouettes (N x 64 x 44 for CASIA-B). ``label`` and
``subject`` are the subject folder, ``sequence`` the type folder, ``condition`` the type's
prefix before a dash (``nm-01`` -> ``nm``; a type without a dash is its own condition),
``view`` the view folder. A folder holding several pickles (several modalities) loads the
one at position ``file_index`` in name order.

An optional ``partition`` JSON file (``{"TRAIN_SET": [...], "TEST_SET": [...]}``, OpenGait's
format) sets ``split`` to ``"train"`` / ``"test"``; as in OpenGait, subjects it does not
list are left out.

Security: unpickling a file can run arbitrary code. This adapter therefore only reads
``.pkl`` files that lie inside the folder you name in ``data.params.root``: a pickle (or a
subject / type / view folder) that is a symlink resolving outside the root is refused with
a ``DataError``. It also unpickles with an allow-list that admits only numpy arrays, so a
pickle that names any other class or function is refused. Still, only point ``root`` at
data whose origin you trust.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

import json
import pickle
from pathlib import Path

from pydantic import Field

from gaitrun.data.records import Sample
from gaitrun.errors import DataError

from ._common import (
    SequenceFilters,
    condition_of,
    existing_root,
    files_with_suffix,
    id_key,
    require_samples,
    subdirs,
)

MODALITIES = {"silhouette", "optical_flow"}
KIND = "sequence"

# The globals a pickled numpy array needs (numpy 1.x and 2.x module names, protocols 2-5).
_ALLOWED_GLOBALS = {
    ("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode"),
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
    ("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer"),
}


class Params(SequenceFilters):
    """Where the OpenGait pickles live, and the optional train/test partition."""

    root: str = Field(..., description="folder holding the subject folders; only pickles "
                                       "inside it are ever unpickled")
    partition: str | None = Field(None, description="OpenGait partition JSON with TRAIN_SET and "
                                                    "TEST_SET subject lists; null: no split")
    file_index: int = Field(0, ge=0, description="which .pkl of a sequence folder to load, in "
                                                 "name order (for folders holding several)")


def scan(params: Params, *, cache_dir: Path, seed: int) -> list[Sample]:
    """Every <subject>/<type>/<view> folder that passes the filters (and the partition)."""
    root = existing_root(params.root, "OpenGait pickle dataset")
    splits = _read_partition(params.partition) if params.partition else None
    samples = []
    for subject_dir in subdirs(root):
        split = splits.get(id_key(subject_dir.name)) if splits is not None else None
        if splits is not None and split is None:
            continue
        for type_dir in subdirs(subject_dir):
            for view_dir in subdirs(type_dir):
                meta = dict(subject=subject_dir.name, condition=condition_of(type_dir.name),
                            view=view_dir.name)
                if params.keeps(**meta):
                    samples.append(Sample(path=str(view_dir), label=subject_dir.name,
                                          sequence=type_dir.name, split=split, **meta))
    return require_samples(samples, root, "<subject>/<type>/<view> sequence folders that pass "
                                          "the partition and the subjects/views/conditions filters")


def load(sample: Sample, params: Params) -> np.ndarray:
    """The sequence's pickle as an (N, H, W) uint8 array."""
    import numpy as np

    folder = Path(sample.path)
    pkls = files_with_suffix(folder, (".pkl",)) if folder.is_dir() else []
    if len(pkls) <= params.file_index:
        raise DataError(str(folder), f"holds {len(pkls)} .pkl file(s), file_index is "
                                     f"{params.file_index}; restore the pickles or lower "
                                     "data.params.file_index")
    pkl = _inside_root(pkls[params.file_index], existing_root(params.root, "OpenGait pickle dataset"))
    array = _unpickle_array(pkl)
    if array.ndim != 3 or array.dtype != np.uint8:
        raise DataError(str(pkl), f"holds a {array.dtype} array of shape {array.shape}; expected "
                                  "uint8 silhouettes N x H x W (is this another modality?)")
    return array


def _inside_root(pkl: Path, root: Path) -> Path:
    """``pkl`` resolved; ``DataError`` if it (or a folder above it) leads outside ``root``."""
    real = pkl.resolve()
    if not real.is_relative_to(root):
        raise DataError(str(pkl), f"resolves to {real}, outside data.params.root ({root}); pickles "
                                  "run code, so only files inside the root are loaded: copy the "
                                  "file into the root instead of linking it")
    return real


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """An unpickler that can rebuild numpy arrays and nothing else."""

    def find_class(self, module: str, name: str):
        if (module, name) not in _ALLOWED_GLOBALS:
            raise pickle.UnpicklingError(f"refers to {module}.{name}, which is not part of a numpy array")
        return super().find_class(module, name)


def _unpickle_array(pkl: Path) -> np.ndarray:
    """The numpy array pickled in ``pkl``; ``DataError`` for anything else or a broken file."""
    import numpy as np

    try:
        with pkl.open("rb") as f:
            value = _NumpyOnlyUnpickler(f).load()
    except Exception as exc:  # a corrupt or foreign pickle can fail in many ways
        raise DataError(str(pkl), f"cannot be unpickled as a numpy array ({exc}); "
                                  "re-create it with OpenGait's pretreatment") from exc
    if not isinstance(value, np.ndarray):
        raise DataError(str(pkl), f"holds a {type(value).__name__}, not a numpy array of frames")
    return value


def _read_partition(path: str) -> dict[str, str]:
    """Subject id (``id_key`` form) -> ``"train"`` / ``"test"`` from an OpenGait partition JSON."""
    file = Path(path).expanduser()
    try:
        content = json.loads(file.read_text())
        sets = {"train": content["TRAIN_SET"], "test": content["TEST_SET"]}
    except FileNotFoundError:
        raise DataError(str(file), "partition file does not exist; check data.params.partition") from None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise DataError(str(file), f"is not an OpenGait partition (JSON with TRAIN_SET and "
                                   f"TEST_SET lists): {exc!r}") from exc
    splits: dict[str, str] = {}
    for split, subjects in sets.items():
        for subject in subjects:
            if splits.setdefault(id_key(subject), split) != split:
                raise DataError(str(file), f"lists subject {subject} in both TRAIN_SET and "
                                           "TEST_SET; keep it in one of them")
    return splits
