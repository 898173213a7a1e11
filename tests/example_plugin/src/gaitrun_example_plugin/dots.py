"""Images of one bright dot whose quadrant is the class (example third-party dataset).

Uses only gaitrun's public plugin API (``gaitrun.plugin_api``): ``Sample`` for what ``scan``
lists, ``DataError`` for a bad sample; ``load`` returns an (H, W, 3) uint8 image, the raw
``rgb`` array of an ``image`` KIND dataset, which feeds architectures of INPUT_KIND ``image``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from gaitrun.plugin_api import DataError, Sample

MODALITIES = frozenset({"rgb"})
KIND = "image"
QUADRANTS = ("top_left", "top_right", "bottom_left", "bottom_right")


class Params(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    subjects: int = Field(6, ge=2, le=100, description="people drawing dots (the CV groups)")
    per_subject: int = Field(8, ge=1, le=1000, description="images per subject")
    size: int = Field(12, ge=4, le=256, description="image side in pixels")


def scan(params: Params, *, cache_dir: Path, seed: int) -> list[Sample]:
    """One Sample per image; nothing on disk, ``index`` addresses the image."""
    return [Sample(path=f"dots://{s}/{i}", label=QUADRANTS[i % 4], subject=f"s{s:02d}", index=s * 1000 + i)
            for s in range(params.subjects) for i in range(params.per_subject)]


def load(sample: Sample, params: Params) -> np.ndarray:
    """The (size, size, 3) uint8 image of ``sample``: a 255 dot in its quadrant, noise elsewhere."""
    if sample.index is None:
        raise DataError(sample.path, "has no index; scan() sets one for every image")
    rng = np.random.default_rng(sample.index)
    half = params.size // 2
    image = rng.integers(0, 40, size=(params.size, params.size, 3), dtype=np.uint8)
    quadrant = QUADRANTS.index(sample.label)
    row, col = (quadrant // 2) * half, (quadrant % 2) * half
    image[row + rng.integers(0, half), col + rng.integers(0, half)] = 255
    return image
