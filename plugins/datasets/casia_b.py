"""CASIA-B silhouettes: one sample per <subject>/<walk>/<view> folder of PNG frames.

Layout (as distributed in ``GaitDatasetB-silh``)::

    <root>/<subject>/<walk>/<view>/<subject>-<walk>-<view>-<frame>.png
    e.g. <root>/001/nm-01/090/001-nm-01-090-001.png

Each sequence folder is one ``Sample``: ``label`` and ``subject`` are the subject folder
(``"001"``), ``condition`` the walk's prefix (``nm`` normal, ``bg`` bag, ``cl`` coat),
``sequence`` the walk (``"nm-01"``) and ``view`` the view folder (``"090"``). ``load``
returns the frames sorted by file name as a (T, H, W) uint8 array.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

import re
from pathlib import Path

from pydantic import Field

from gaitrun.data.records import Sample
from gaitrun.errors import DataError

from ._common import (
    SequenceFilters,
    condition_of,
    existing_root,
    files_with_suffix,
    read_image,
    require_samples,
    subdirs,
)

MODALITIES = {"silhouette", "optical_flow"}
KIND = "sequence"


class Params(SequenceFilters):
    """Where CASIA-B lives and which of its sequences to use."""

    root: str = Field(..., description="folder holding the subject folders 001 ... 124")


WALK = re.compile(r"[a-z]{2}-\d{2}")  # a walk folder: nm-01, bg-02, cl-01


def _check_depth(root: Path) -> None:
    """``DataError`` saying the root looks wrong if walk folders are not two levels below it."""
    top = subdirs(root)
    if any(WALK.fullmatch(d.name) for d in top):
        raise DataError(str(root), "the root looks wrong: it holds walk folders (nm-01 ...) itself, so it "
                                   f"is one subject's folder; set data.params.root to {root.parent}")
    second = [w for s in top for w in subdirs(s)]
    if any(WALK.fullmatch(w.name) for w in second):
        return
    deeper = next((v for w in second for v in subdirs(w) if WALK.fullmatch(v.name)), None)
    if deeper is not None:
        raise DataError(str(root), f"the root looks wrong: walk folders such as {deeper.relative_to(root)} "
                                   "lie three levels below it, not two (<subject>/<walk>/<view>); set "
                                   f"data.params.root to {deeper.parent.parent}")


def scan(params: Params, *, cache_dir: Path, seed: int) -> list[Sample]:
    """Every <subject>/<walk>/<view> folder that passes the filters, sorted by path."""
    root = existing_root(params.root, "CASIA-B dataset")
    _check_depth(root)
    samples = [
        Sample(path=str(view_dir), label=subject_dir.name, subject=subject_dir.name,
               condition=condition_of(walk_dir.name), view=view_dir.name, sequence=walk_dir.name)
        for subject_dir in subdirs(root)
        for walk_dir in subdirs(subject_dir)
        for view_dir in subdirs(walk_dir)
        if params.keeps(subject=subject_dir.name, view=view_dir.name,
                        condition=condition_of(walk_dir.name))
    ]
    return require_samples(samples, root, "<subject>/<walk>/<view> sequence folders that pass "
                                          "the subjects/views/conditions filters")


def load(sample: Sample, params: Params) -> np.ndarray:
    """The sequence's silhouettes as (T, H, W) uint8, frames in file-name order."""
    import numpy as np

    folder = Path(sample.path)
    pngs = files_with_suffix(folder, (".png",)) if folder.is_dir() else []
    if not pngs and folder.is_dir() and subdirs(folder):
        raise DataError(str(folder), "holds folders, not .png frames: the root looks wrong (CASIA-B is "
                                     "<root>/<subject>/<walk>/<view>/*.png); check data.params.root")
    if not pngs:
        raise DataError(str(folder), "holds no .png frames; remove the empty sequence folder "
                                     "or restore its frames")
    frames = [read_image(png, grayscale=True) for png in pngs]
    for png, frame in zip(pngs, frames, strict=True):
        if frame.shape != frames[0].shape:
            raise DataError(str(folder), f"frames differ in size: {pngs[0].name} is {frames[0].shape}, "
                                         f"{png.name} is {frame.shape}; resize them to one size")
    return np.stack(frames)
