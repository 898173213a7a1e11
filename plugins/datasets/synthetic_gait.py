"""Synthetic CASIA-B-layout gait silhouettes, generated once into the cache.

Walking people rendered by ``gaitrun.data.synthetic``: ``subjects`` identities, each with
the walks in ``walks`` (``nm`` normal, ``bg`` with a bag, ``cl`` in a coat) seen from every
angle in ``views``. The data set is written on first use to
``<cache_dir>/synthetic_gait/<hash of the params>`` (or ``root``) and reused afterwards.
One sample per ``<subject>/<walk>/<view>`` folder, laid out as CASIA-B is.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

import hashlib
import json
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from gaitrun.data.records import Sample
from gaitrun.errors import DataError

MODALITIES = frozenset({"silhouette", "optical_flow"})
KIND = "sequence"

View = Annotated[int, Field(ge=0, le=180)]


class Params(BaseModel):
    """How many subjects, walks, views and frames to generate, and where."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    subjects: int = Field(20, ge=2, le=999, description="number of people (subject ids 001, 002, ...)")
    views: tuple[View, ...] = Field((0, 54, 90, 126, 180), min_length=1,
                                    description="camera angles in degrees: 0 front, 90 side, 180 back")
    walks: dict[Literal["nm", "bg", "cl"], Annotated[int, Field(ge=1, le=99)]] = Field(
        default_factory=lambda: {"nm": 6, "bg": 2, "cl": 2}, min_length=1,
        description="walks per condition: nm normal, bg carrying a bag, cl wearing a coat")
    frames: int = Field(30, ge=2, le=999, description="frames per sequence")
    size: tuple[Annotated[int, Field(ge=16)], Annotated[int, Field(ge=16)]] = Field(
        (64, 64), description="frame size [height, width] in pixels")
    seed: int | None = Field(None, ge=0, description="generator seed; null uses the recipe's seed")
    root: str | None = Field(None, description="folder to write to; null means a folder in the cache")
    workers: int = Field(2, ge=1, description="processes that render the data set (no effect on it)")


def _spec(params: Params, seed: int) -> dict[str, Any]:
    """The generation parameters: what decides the data set's content."""
    from gaitrun.data import synthetic

    return synthetic.describe(subjects=params.subjects, views=params.views, walks=params.walks,
                              frames=params.frames, size=params.size,
                              seed=seed if params.seed is None else params.seed)


def dataset_root(params: Params, *, cache_dir: Path, seed: int) -> Path:
    """Where the data set of ``params`` lives: ``root``, or a folder in the cache named by a hash."""
    if params.root is not None:
        return Path(params.root).expanduser()
    from gaitrun.data import synthetic

    key = json.dumps({"version": synthetic.VERSION, **_spec(params, seed)}, sort_keys=True)
    return Path(cache_dir) / "synthetic_gait" / hashlib.sha256(key.encode()).hexdigest()[:16]


def scan(params: Params, *, cache_dir: Path, seed: int) -> list[Sample]:
    """Generate the data set unless it is complete, then one sample per sequence folder."""
    from gaitrun.data import synthetic

    root, spec = dataset_root(params, cache_dir=cache_dir, seed=seed), _spec(params, seed)
    if not synthetic.is_complete(root, spec):
        from gaitrun.progress import console_bar

        with console_bar("generating synthetic gait", unit="sequences") as progress:
            synthetic.generate(root, **spec, workers=params.workers, progress=progress)
    return [Sample(path=str(folder), label=folder.parts[-3], subject=folder.parts[-3],
                   condition=folder.parts[-2].split("-")[0], view=folder.parts[-1], sequence=folder.parts[-2])
            for folder in sorted(root.glob("[0-9][0-9][0-9]/[a-z][a-z]-[0-9][0-9]/[0-9][0-9][0-9]"))]


def load(sample: Sample, params: Params) -> np.ndarray:
    """The sequence's frames as (T, H, W) uint8, in file-name order."""
    import numpy as np

    from ._common import read_image

    pngs = sorted(Path(sample.path).glob("*.png"))
    if not pngs:
        raise DataError(sample.path, "holds no .png frames; delete the data set folder to regenerate it")
    frames = []
    for png in pngs:
        try:
            frame = read_image(png, grayscale=True)
        except DataError:
            frame = None
        if frame is None or frame.shape != tuple(params.size):
            raise DataError(str(png), f"is not a readable {params.size[0]}x{params.size[1]} PNG (truncated "
                                      "or corrupt); delete the data set folder to regenerate it")
        frames.append(frame)
    return np.stack(frames)
