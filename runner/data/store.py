"""The clip store: every sample decoded and preprocessed once, concatenated into one array.

``frames[offsets[i] : offsets[i] + lengths[i]]`` is sample ``i``'s clip ((T, H, W, C) frames,
or (T, C) sensor steps) in float16 -- small enough for RAM, fast to slice in the tf.data graph.
With ``data.cache: disk`` the store is saved in the cache folder (atomically, keyed by a hash
of everything that shaped it) and memory-mapped by later runs; ``memory`` keeps it for this
process only; ``none`` decodes anew each run.

Bad samples follow ``data.on_bad_sample``: ``error`` stops with the file's path, ``skip``
leaves them out and lists them (``skipped``) for the run folder. Nothing is dropped silently.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..atomic import atomic_path, write_json
from ..errors import DataError
from .records import Sample

STORE_VERSION = 1
_MEMORY: dict[str, ClipStore] = {}


@dataclass
class ClipStore:
    frames: np.ndarray
    offsets: np.ndarray
    lengths: np.ndarray
    kept: np.ndarray  # indices (into the scanned samples) of the samples in the store
    skipped: list[dict[str, str]] = field(default_factory=list)

    def clip(self, i: int) -> np.ndarray:
        return self.frames[self.offsets[i]: self.offsets[i] + self.lengths[i]]


def store_key(data: Any, samples: Sequence[Sample]) -> str:
    """A hash of the data settings and the sample list that shaped the store."""
    h = hashlib.sha256()
    settings = data.model_dump(mode="json", include={"adapter", "params", "modality", "clip", "on_bad_sample"})
    settings["clip"].pop("frames", None), settings["clip"].pop("stride", None)  # windows are cut later
    h.update(json.dumps([STORE_VERSION, settings], sort_keys=True).encode())
    for s in samples:
        h.update(f"{s.path}|{s.index}\n".encode())
    return h.hexdigest()[:16]


def _decode(samples: Sequence[Sample], load: Callable, data: Any, workers: int,
            progress: Callable[[int, int], None] | None) -> tuple[list, list]:
    from .preprocess import to_clip

    def one(sample: Sample) -> np.ndarray | DataError:
        try:
            raw = load(sample, data.params)
            return to_clip(raw, modality=data.modality, size=tuple(data.clip.size), source=sample.path)
        except DataError as exc:
            return exc

    clips, skipped = [], []
    with ThreadPoolExecutor(max_workers=workers) as pool:  # OpenCV and h5py release the GIL
        for n, result in enumerate(pool.map(one, samples), 1):
            if isinstance(result, DataError):
                if data.on_bad_sample == "error":
                    raise DataError(result.path, f"{result.reason} (set data.on_bad_sample: skip to "
                                    "leave such files out)")
                skipped.append({"path": result.path, "reason": result.reason})
                clips.append(None)
            elif len(result) == 0:
                bad = DataError(samples[n - 1].path, "no usable frames after preprocessing")
                if data.on_bad_sample == "error":
                    raise bad
                skipped.append({"path": bad.path, "reason": bad.reason})
                clips.append(None)
            else:
                clips.append(result)
            if progress:
                progress(n, len(samples))
    return clips, skipped


def _assemble(clips: list, skipped: list) -> ClipStore:
    kept = np.asarray([i for i, c in enumerate(clips) if c is not None], dtype=np.int64)
    if not len(kept):
        raise DataError(skipped[0]["path"] if skipped else "<dataset>", "every sample was unusable")
    good = [clips[i] for i in kept]
    lengths = np.asarray([len(c) for c in good], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
    frames = np.concatenate(good).astype(np.float16)
    return ClipStore(frames=frames, offsets=offsets, lengths=lengths, kept=kept, skipped=skipped)


def _save(store: ClipStore, folder: Path) -> None:
    with atomic_path(folder) as tmp:
        tmp.mkdir()
        np.save(tmp / "frames.npy", store.frames)
        np.savez(tmp / "index.npz", offsets=store.offsets, lengths=store.lengths, kept=store.kept)
        write_json(tmp / "skipped.json", store.skipped)


def _load(folder: Path) -> ClipStore:
    index = np.load(folder / "index.npz")
    return ClipStore(frames=np.load(folder / "frames.npy", mmap_mode="r"), offsets=index["offsets"],
                     lengths=index["lengths"], kept=index["kept"],
                     skipped=json.loads((folder / "skipped.json").read_text()))


def _remove_stale_temporaries(folder: Path, max_age_s: float = 3600.0) -> None:
    """Temporary folders of a store write killed long ago (a write takes seconds)."""
    import shutil
    import time

    for tmp in folder.glob(".*.tmp") if folder.is_dir() else []:
        if time.time() - tmp.stat().st_mtime > max_age_s:
            shutil.rmtree(tmp, ignore_errors=True)


def build_store(samples: Sequence[Sample], load: Callable, data: Any, *, cache_dir: Path,
                workers: int = 2, progress: Callable[[int, int], None] | None = None) -> ClipStore:
    """Decode and preprocess ``samples`` (or reuse a cached store for exactly these settings)."""
    key = store_key(data, samples)
    if data.cache == "memory" and key in _MEMORY:
        return _MEMORY[key]
    folder = cache_dir / "clips" / key
    _remove_stale_temporaries(folder.parent)
    if data.cache == "disk" and (folder / "frames.npy").is_file():
        return _load(folder)
    store = _assemble(*_decode(samples, load, data, workers, progress))
    if data.cache == "disk":
        _save(store, folder)
        return _load(folder)
    if data.cache == "memory":
        _MEMORY[key] = store
    return store
