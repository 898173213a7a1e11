"""scikit-learn's bundled 8 x 8 handwritten digits as small RGB images (no download).

1797 images of the digits 0-9 (``sklearn.datasets.load_digits``), useful to try a recipe
in seconds. ``label`` is the digit, ``index`` the row in the full dataset, ``path``
``"sklearn:digits"``; there are no subjects, so split with a scheme that does not group
by subject. ``load`` returns (8, 8, 3) uint8: the 0-16 ink level scaled to 0-255 and
repeated over the three channels, so the images fit the ``rgb`` modality.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

from functools import lru_cache
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from gaitrun.data.records import Sample
from gaitrun.errors import DataError

MODALITIES = {"rgb"}
KIND = "image"

SOURCE = "sklearn:digits"


class Params(BaseModel):
    """How many digit classes to use."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    n_class: int = Field(10, ge=2, le=10, description="use the digits 0 .. n_class-1")


def scan(params: Params, *, cache_dir: Path, seed: int) -> list[Sample]:
    """One sample per image whose digit is below ``n_class``, in dataset order."""
    _, targets = _digits()
    return [Sample(path=SOURCE, label=str(digit), index=row)
            for row, digit in enumerate(targets.tolist()) if digit < params.n_class]


def load(sample: Sample, params: Params) -> np.ndarray:
    """Image ``sample.index`` as (8, 8, 3) uint8."""
    import numpy as np

    images, _ = _digits()
    if sample.index is None or not 0 <= sample.index < len(images):
        raise DataError(SOURCE, f"has {len(images)} images, not row {sample.index}")
    return np.repeat(images[sample.index][..., np.newaxis], 3, axis=-1)


@lru_cache(maxsize=1)
def _digits() -> tuple[np.ndarray, np.ndarray]:
    """All images as (N, 8, 8) uint8 in 0-255 and their digits (N,), read once per process."""
    import numpy as np
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = np.rint(bunch.images * (255.0 / 16.0)).astype(np.uint8)
    images.setflags(write=False)
    return images, bunch.target
