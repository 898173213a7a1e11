"""Video folders: one class per folder of .mp4 / .avi videos, decoded with OpenCV.

Layouts::

    <root>/<class>/<video>.mp4              split left to the CV scheme
    <root>/<split>/<class>/<video>.avi      split folders Train / Validation / Test (any case)

Videos are .avi, .mkv, .mov or .mp4 (any case). ``label`` is the class folder's name,
``sequence`` the video's file stem, ``split`` the normalised split folder or ``None``.
``load`` returns every decoded frame, or ``max_frames`` frames sampled uniformly over the
video, as (T, H, W, 3) uint8 RGB; fixed-length clips and resizing are the data pipeline's job.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from gaitrun.data.records import Sample
from gaitrun.errors import DataError

from ._common import class_folders, existing_root, files_with_suffix, require_samples

MODALITIES = {"rgb"}
KIND = "sequence"

VIDEO_SUFFIXES = (".avi", ".mkv", ".mov", ".mp4")
# A video must decode to at least this share of the frames its header announces: headers
# may be a little off, a file cut short decodes to far fewer.
COMPLETE = 0.9


class Params(BaseModel):
    """Where the video folders are and how many frames to decode at most."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    root: str = Field(..., description="folder holding <class>/ or <split>/<class>/ video folders")
    max_frames: int | None = Field(None, ge=1, description="decode at most this many frames, "
                                                           "sampled uniformly; null: every frame")


def scan(params: Params, *, cache_dir: Path, seed: int) -> list[Sample]:
    """Every video of every class folder, sorted by path (videos are not opened here)."""
    root = existing_root(params.root, "video dataset")
    samples = [Sample(path=str(video), label=folder.name, sequence=video.stem, split=split)
               for split, folder in class_folders(root)
               for video in files_with_suffix(folder, VIDEO_SUFFIXES)]
    return require_samples(samples, root, "videos in <class>/ or <split>/<class>/ folders "
                                          f"({', '.join(VIDEO_SUFFIXES)})")


def load(sample: Sample, params: Params) -> np.ndarray:
    """The video's frames as (T, H, W, 3) uint8 RGB (at most ``max_frames``, uniformly sampled)."""
    import cv2
    import numpy as np

    path = Path(sample.path)
    capture = cv2.VideoCapture(str(path))
    try:
        if not capture.isOpened():
            raise DataError(str(path), "cannot be opened as a video (missing, empty or an unknown "
                                       "container); re-encode it, e.g. to H.264 .mp4, or delete it")
        announced = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
        wanted = _frames_to_keep(announced, params.max_frames)
        frames, ended_at = _decode(capture, wanted)
    finally:
        capture.release()
    if not frames:
        raise DataError(str(path), "no frame could be decoded (empty video or unsupported codec); "
                                   "re-encode it, e.g. to H.264 .mp4, or delete it")
    if ended_at is not None and ended_at < COMPLETE * announced:
        raise DataError(str(path), f"only {ended_at} of the {announced} frames its header announces could be "
                                   "decoded (truncated or corrupt); re-encode or replace it, or delete it")
    if params.max_frames is not None and len(frames) > params.max_frames:  # frame count was unknown
        frames = [frames[i] for i in _uniform(len(frames), params.max_frames)]
    return np.stack([cv2.cvtColor(f, cv2.COLOR_BGR2RGB) for f in frames])


def _frames_to_keep(count: int, max_frames: int | None) -> set[int] | None:
    """Indices of the frames to decode; ``None`` means every frame.

    The container's frame count is only a hint (it can be 0 or wrong); when it is unknown
    every frame is decoded and ``load`` samples afterwards.
    """
    if max_frames is None or count <= max_frames:
        return None
    return set(_uniform(count, max_frames))


def _uniform(count: int, n: int) -> list[int]:
    """``n`` distinct frame indices spread evenly over ``range(count)`` (``n <= count``)."""
    import numpy as np

    return sorted({int(round(i)) for i in np.linspace(0, count - 1, n)})


def _decode(capture: Any, wanted: set[int] | None) -> tuple[list[np.ndarray], int | None]:
    """The BGR frames of an open ``cv2.VideoCapture`` whose index is in ``wanted`` (all if ``None``),
    and the number of frames grabbed if the video ended before the last wanted frame
    (``None`` if it did not: nothing was missing).

    Frames that are not wanted are only grabbed, not converted, and decoding stops after
    the last wanted one.
    """

    frames: list[np.ndarray] = []
    last = max(wanted) if wanted else None
    index = 0
    while last is None or index <= last:
        if not capture.grab():
            return frames, index
        if wanted is None or index in wanted:
            ok, frame = capture.retrieve()
            if ok:
                frames.append(frame)
        index += 1
    return frames, None
