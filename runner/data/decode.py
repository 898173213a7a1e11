"""Decoding and preprocessing samples in worker processes, with the checks that keep bad
values out of the store.

PNG/JPEG decoding, cropping and Farneback flow are CPU-bound Python/OpenCV work, so
samples are spread over forked processes (``workers``); results come back in sample order
and are written by the caller one at a time -- nothing holds every clip. Each clip is
checked before it is stored: NaN or infinite values make it a bad sample, and a value
beyond the range of the modality's storage dtype (float16: +-65504) is refused with the
file and channel, never stored as ``inf``.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import DataError
from .records import Sample

# What each modality is stored in: images and flow are small values, sensors are not
# (pressure in Pa, magnetometers in nT, raw ADC counts exceed float16's 65504).
STORE_DTYPES = {"silhouette": "float16", "rgb": "float16", "optical_flow": "float16", "inertial": "float32"}


@dataclass(frozen=True)
class Job:
    """What a worker needs to turn a sample into a stored clip."""

    load: Callable[[Sample, Any], Any]
    params: Any
    modality: str
    size: tuple[int, int]

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(STORE_DTYPES[self.modality])


def default_workers() -> int:
    """One process per CPU core this process may use."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def check_values(clip: np.ndarray, *, source: str, modality: str, dtype: np.dtype) -> None:
    """``DataError`` for NaN/Inf values, or values the storage dtype cannot hold."""
    per_channel = clip.reshape(len(clip), -1, clip.shape[-1])  # (T, values, C)
    bad = ~np.isfinite(per_channel).all(axis=1)
    if bad.any():
        step, channel = (int(v) for v in np.argwhere(bad)[0])
        raise DataError(source, f"holds NaN or infinite values (channel {channel}, time step {step}); "
                                "repair or remove the sample")
    if np.issubdtype(dtype, np.floating):
        limit = float(np.finfo(dtype).max)
        peak = np.abs(per_channel).max(axis=(0, 1))
        if (peak > limit).any():
            channel = int(np.argmax(peak > limit))
            raise DataError(source, f"channel {channel} reaches {float(peak[channel]):g}, beyond the "
                                    f"{dtype.name} range (+-{limit:g}) {modality} is stored in; "
                                    "scale it in the dataset adapter")


def clip_of(sample: Sample, job: Job) -> np.ndarray:
    """The sample as a checked clip in the store's dtype (``DataError`` if it is bad)."""
    from .preprocess import to_clip

    raw = job.load(sample, job.params)
    clip = to_clip(raw, modality=job.modality, size=job.size, source=sample.path)
    if len(clip) == 0:
        raise DataError(sample.path, "no usable frames after preprocessing")
    check_values(clip, source=sample.path, modality=job.modality, dtype=job.dtype)
    return clip.astype(job.dtype)


_JOB: tuple[Sequence[Sample], Job] | None = None  # set before forking: workers inherit it


def _work(index: int) -> tuple[int, np.ndarray | DataError]:
    samples, job = _JOB  # type: ignore[misc]
    try:
        return index, clip_of(samples[index], job)
    except DataError as exc:
        return index, exc
    except OSError as exc:  # an unreadable file the adapter did not catch
        return index, DataError(getattr(exc, "filename", None) or samples[index].path,
                                f"cannot be read ({exc.strerror or exc}); check the file and its permissions")


def _init_worker() -> None:
    import cv2

    cv2.setNumThreads(1)  # one process per core already


def decoded(samples: Sequence[Sample], job: Job, *, start: int = 0,
            workers: int = 1) -> Iterator[tuple[int, np.ndarray | DataError]]:
    """``(index, clip or DataError)`` for the samples from ``start`` on, in order."""
    global _JOB
    _JOB = (samples, job)
    indices = range(start, len(samples))
    if workers <= 1 or len(indices) < 4 or sys.platform != "linux":
        yield from map(_work, indices)
        return
    # fork: workers inherit the samples and the adapter without pickling them
    with multiprocessing.get_context("fork").Pool(workers, _init_worker) as pool:
        yield from pool.imap(_work, indices, chunksize=max(1, min(8, len(indices) // (8 * workers))))
