"""Image folders: one class per folder, with or without the dataset's own split folders.

Layouts::

    <root>/<class>/<image>                  split left to the CV scheme
    <root>/<split>/<class>/<image>          split folders Train / Validation / Test (any case;
                                            also train, val, valid, test ...)

Images are .png, .jpg, .jpeg or .bmp (any case). ``label`` is the class folder's name and
``split`` the normalised split (``train`` / ``validation`` / ``test``) or ``None``. ``load``
returns (H, W, 3) uint8 RGB; with ``grayscale`` the grey level is repeated over the three
channels (colour removed, shape unchanged). Resizing is the data pipeline's job.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from gaitrun.data.records import Sample

from ._common import (
    IMAGE_SUFFIXES,
    class_folders,
    existing_root,
    files_with_suffix,
    read_image,
    require_samples,
)

MODALITIES = {"rgb"}
KIND = "image"


class Params(BaseModel):
    """Where the image folders are and whether to read them as grey."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    root: str = Field(..., description="folder holding <class>/ or <split>/<class>/ image folders")
    grayscale: bool = Field(False, description="drop colour: the grey level in all three channels")


def scan(params: Params, *, cache_dir: Path, seed: int) -> list[Sample]:
    """Every image of every class folder, sorted by path."""
    root = existing_root(params.root, "image dataset")
    samples = [Sample(path=str(image), label=folder.name, split=split)
               for split, folder in class_folders(root)
               for image in files_with_suffix(folder, IMAGE_SUFFIXES)]
    return require_samples(samples, root, "images in <class>/ or <split>/<class>/ folders "
                                          f"({', '.join(IMAGE_SUFFIXES)})")


def load(sample: Sample, params: Params) -> np.ndarray:
    """The image as (H, W, 3) uint8 RGB (grey in every channel when ``grayscale``)."""
    import numpy as np

    image = read_image(Path(sample.path), grayscale=params.grayscale)
    return np.repeat(image[..., np.newaxis], 3, axis=-1) if params.grayscale else image
