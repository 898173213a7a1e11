"""Helpers shared by the dataset adapters: root checks, sorted listings, id matching,
split-folder names and image reading that turns decoder failures into ``DataError``.

Nothing here imports OpenCV at module level: the adapters' ``Params`` must stay importable
without heavy libraries.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

from collections.abc import Iterable
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from gaitrun.data.records import Sample
from gaitrun.errors import DataError

ROOT_HINT = "check data.params.root"

IMAGE_SUFFIXES = (".bmp", ".jpeg", ".jpg", ".png")

# Folder names (lower-cased) that mark a dataset's own split, and the split they name.
SPLIT_NAMES = {
    "train": "train", "training": "train",
    "validation": "validation", "val": "validation", "valid": "validation",
    "test": "test", "testing": "test",
}


def existing_root(root: str, what: str) -> Path:
    """``root`` as an absolute path; ``DataError`` if it is not an existing folder.

    ``what`` names the dataset for the message, e.g. ``"CASIA-B dataset"``.
    """
    path = Path(root).expanduser().resolve()
    if not path.is_dir():
        raise DataError(str(path), f"{what} folder does not exist; {ROOT_HINT}")
    return path


def require_samples(samples: list[Sample], root: Path, what: str, hint: str = ROOT_HINT) -> list[Sample]:
    """The samples sorted by (path, index); ``DataError`` naming ``root`` if there are none."""
    if not samples:
        raise DataError(str(root), f"holds no {what}; {hint}")
    return sorted(samples, key=lambda s: (s.path, -1 if s.index is None else s.index))


def subdirs(folder: Path) -> list[Path]:
    """The visible sub-folders of ``folder``, sorted by name."""
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def files_with_suffix(folder: Path, suffixes: Iterable[str]) -> list[Path]:
    """The visible files of ``folder`` whose suffix is one of ``suffixes`` (any case), sorted."""
    wanted = {s.lower() for s in suffixes}
    return sorted(p for p in folder.iterdir()
                  if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in wanted)


def id_key(value: object) -> str:
    """A comparable form of a subject or view id: ``"001"``, ``1`` and ``"1"`` all give ``"1"``."""
    text = str(value).strip()
    return str(int(text)) if text.isdigit() else text


def condition_of(walk: str) -> str:
    """The walking condition of a walk folder name: ``"nm-01"`` -> ``"nm"``; no dash: itself."""
    return walk.split("-", 1)[0]


class SequenceFilters(BaseModel):
    """Optional subject / view / condition filters shared by the silhouette-folder adapters."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    subjects: list[int | str] | None = Field(
        None, description="keep only these subjects (e.g. [1, 2] or ['001']); null keeps all")
    views: list[int | str] | None = Field(
        None, description="keep only these views (e.g. [90] or ['090']); null keeps all")
    conditions: list[str] | None = Field(
        None, description="keep only these walking conditions (e.g. [nm, bg]); null keeps all")

    def keeps(self, *, subject: str, view: str, condition: str) -> bool:
        """Whether a sequence with this metadata passes every filter that is set."""
        return (_listed(subject, self.subjects) and _listed(view, self.views)
                and _listed(condition, self.conditions))


def _listed(value: str, allowed: list[int | str] | None) -> bool:
    return allowed is None or id_key(value) in {id_key(a) for a in allowed}


def class_folders(root: Path) -> list[tuple[str | None, Path]]:
    """``(split, class folder)`` pairs of a ``<root>/<class>/`` or ``<root>/<split>/<class>/`` tree.

    The split layout is recognised when every top-level folder is a split name (any case:
    Train, val, VALID, Test ...); a mix of split and class folders is refused as ambiguous.
    """
    top = subdirs(root)
    splits = [d for d in top if d.name.lower() in SPLIT_NAMES]
    if not splits:
        return [(None, d) for d in top]
    if len(splits) != len(top):
        others = [d.name for d in top if d not in splits]
        raise DataError(str(root), f"mixes split folders ({', '.join(d.name for d in splits)}) with "
                                   f"class folders ({', '.join(others)}); put every class folder "
                                   "inside a split folder or remove the split folders")
    return [(SPLIT_NAMES[s.name.lower()], d) for s in splits for d in subdirs(s)]


# What a complete file of each format ends with. OpenCV decodes a JPEG cut in half as a
# whole image (the lower part grey; only libjpeg's "Premature end of JPEG file" on stderr
# tells), so the end is checked before decoding.
END_MARKERS = {".jpg": b"\xff\xd9", ".jpeg": b"\xff\xd9", ".png": b"IEND\xaeB`\x82"}


def check_complete(path: Path, data: bytes) -> None:
    """``DataError`` if a JPEG or PNG file's bytes do not end with its end-of-image marker."""
    marker = END_MARKERS.get(path.suffix.lower())
    if marker is not None and not data[-64:].rstrip(b"\x00").endswith(marker):  # zero padding is allowed
        raise DataError(str(path), f"is truncated: it does not end with the {path.suffix.lower()[1:].upper()} "
                                   "end-of-image marker; replace or delete the file")


def read_image(path: Path, *, grayscale: bool) -> np.ndarray:
    """One image file: (H, W) uint8 if ``grayscale`` else (H, W, 3) uint8 in RGB order.

    OpenCV decodes colour images as BGR; this converts them. A file OpenCV cannot decode
    (truncated, empty, not an image) raises ``DataError`` naming it. The file is read once:
    its end is checked (``check_complete``), then its bytes are decoded.
    """
    import cv2
    import numpy as np

    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DataError(str(path), f"cannot be read ({exc.strerror or exc}); check the file") from exc
    check_complete(path, data)
    flag = cv2.IMREAD_GRAYSCALE if grayscale else cv2.IMREAD_COLOR
    image = cv2.imdecode(np.frombuffer(data, np.uint8), flag) if data else None
    if image is None:
        raise DataError(str(path), "cannot be decoded as an image (empty, truncated or not an "
                                   "image); replace or delete the file")
    return image if grayscale else cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
