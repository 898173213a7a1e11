"""The clip store: every sample decoded and preprocessed once, its frames back to back.

``frames[offsets[i] : offsets[i] + lengths[i]]`` is sample ``i``'s clip ((T, H, W, C) frames,
or (T, C) sensor steps) in the modality's storage dtype (``decode.STORE_DTYPES``: float16
for images and flow, float32 for inertial sensors).

The store is built in bounded memory: samples are decoded by worker processes and each clip
is appended to a file as it arrives (``storefile``), committed chunk by chunk. With
``data.cache: disk`` that file lives in the cache folder (keyed by a hash of everything that
shaped it): a killed build resumes at its last chunk, later runs reuse it, and training
reads windows from it without loading it (``frames`` is a read-only memory map). ``memory``
reads the finished file into RAM for this process (fastest, for sets that fit); ``none``
does the same without keeping it for later calls.

Bad samples follow ``data.on_bad_sample``: ``error`` stops with the file's path, ``skip``
leaves them out and lists them (``skipped``: the sample, the file at fault, the reason) for
the run folder. Nothing is dropped silently.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import DataError
from . import storefile
from .decode import Job, decoded, default_workers
from .records import Sample
from .temporaries import remove_dead

STORE_VERSION = 2
CHUNK_SAMPLES = 64  # samples per committed chunk: what a killed build loses at most
_MEMORY: dict[str, ClipStore] = {}


@dataclass
class ClipStore:
    frames: np.ndarray  # read-only memory map (disk) or an array in RAM
    offsets: np.ndarray
    lengths: np.ndarray
    kept: np.ndarray  # indices (into the scanned samples) of the samples in the store
    skipped: list[dict[str, Any]] = field(default_factory=list)
    folder: Path | None = None  # the store on disk; None: ``frames`` is in RAM

    def clip(self, i: int) -> np.ndarray:
        return self.frames[self.offsets[i]: self.offsets[i] + self.lengths[i]]

    def without(self, positions: np.ndarray, entries: list[dict[str, Any]]) -> ClipStore:
        """This store less the samples at ``positions``, which are added to ``skipped``."""
        keep = np.setdiff1d(np.arange(len(self.kept)), positions)
        return replace(self, offsets=self.offsets[keep], lengths=self.lengths[keep], kept=self.kept[keep],
                       skipped=[*self.skipped, *entries])


def shard(positions: np.ndarray, *, rank: int, world: int, seed: int) -> np.ndarray:
    """Worker ``rank``'s share of ``positions`` among ``world`` readers of one store.

    The positions are permuted by ``seed`` and dealt round-robin, so shards are disjoint,
    cover every position, differ in size by at most one, and are the same on every worker
    that uses the same seed; each is returned sorted (reads go forward through the file).
    """
    if not 0 <= rank < world:
        raise ValueError(f"rank must be in 0..{world - 1}, got {rank}")
    order = np.random.default_rng(seed).permutation(len(positions))
    return np.sort(np.asarray(positions)[order[rank::world]])


def store_key(data: Any, samples: Sequence[Sample]) -> str:
    """A hash of the data settings and the sample list that shaped the store."""
    h = hashlib.sha256()
    settings = data.model_dump(mode="json", include={"adapter", "params", "modality", "clip", "on_bad_sample"})
    for windowing in ("frames", "stride", "pad"):  # windows are cut later
        settings["clip"].pop(windowing, None)
    h.update(json.dumps([STORE_VERSION, settings], sort_keys=True).encode())
    for s in samples:
        h.update(f"{s.path}|{s.index}\n".encode())
    return h.hexdigest()[:16]


def skipped_entry(sample: Sample, error: DataError) -> dict[str, Any]:
    """What ``skipped.json`` says about a bad sample: which sample, which file, why."""
    entry: dict[str, Any] = {"path": sample.path, "label": sample.label}
    entry.update({k: v for k in ("subject", "condition", "view", "sequence") if (v := getattr(sample, k))})
    if sample.index is not None:
        entry["index"] = sample.index
    if error.path != sample.path:
        entry["file"] = error.path
    entry["reason"] = error.reason
    return entry


def _refuse(sample: Sample, error: DataError) -> DataError:
    inside = f"; the sample is {sample.path}" if error.path != sample.path else ""
    return DataError(error.path, f"{error.reason}{inside} (set data.on_bad_sample: skip to leave "
                                 "such samples out; skipped.json lists them)")


def _write(writer: storefile.StoreWriter, samples: Sequence[Sample], job: Job, data: Any, workers: int,
           progress: Callable[[int, int], None] | None) -> None:
    """Decode the samples the writer has not committed yet and append them, chunk by chunk."""
    total = len(samples)
    for index, result in decoded(samples, job, start=writer.samples_end, workers=workers):
        if isinstance(result, np.ndarray) and not writer.fits(result):
            result = DataError(samples[index].path, f"has frames of shape {result.shape[1:]}, the "
                                                    f"store's are {writer.frame_shape}; make the samples agree")
        if isinstance(result, DataError):
            if data.on_bad_sample == "error":
                raise _refuse(samples[index], result)
            writer.skip(skipped_entry(samples[index], result))
        else:
            writer.add(index, result)
        if (index + 1) % CHUNK_SAMPLES == 0 or index + 1 == total:
            writer.commit(index + 1)
        if progress:
            progress(index + 1, total)


def _build(folder: Path, samples: Sequence[Sample], job: Job, data: Any, workers: int,
           progress: Callable[[int, int], None] | None) -> dict[str, Any]:
    try:
        return _build_with(storefile.StoreWriter(folder, dtype=job.dtype.name), samples, job, data, workers,
                           progress)
    except OSError as exc:
        raise DataError(str(folder), f"cannot write the clip store: {exc.strerror or exc}; free disk space or "
                                     "set data.cache_dir to a larger disk (the build resumes where it "
                                     "stopped)") from exc


def _build_with(writer: storefile.StoreWriter, samples: Sequence[Sample], job: Job, data: Any, workers: int,
                progress: Callable[[int, int], None] | None) -> dict[str, Any]:
    try:
        if progress and writer.samples_end:
            progress(writer.samples_end, len(samples))
        _write(writer, samples, job, data, workers, progress)
        if not any(c["kept"] for c in writer.chunks):
            first = next((s for c in writer.chunks for s in c["skipped"]), {"path": "<dataset>"})
            raise DataError(first["path"], f"every sample was unusable; this one: {first.get('reason', '?')}")
        return writer.finish({"modality": job.modality})
    finally:
        writer.close()


def _open(folder: Path, manifest: dict[str, Any], *, in_memory: bool) -> ClipStore:
    index, skipped = storefile.read_index(folder)
    frames = storefile.open_frames(folder, manifest, in_memory=in_memory)
    return ClipStore(frames=frames, skipped=skipped, folder=None if in_memory else folder, **index)


def _wait_for_other_builder(folder: Path, poll_s: float = 1.0) -> dict[str, Any] | None:
    """Wait while another live process builds ``folder``; its manifest, or None if we may build."""
    while not storefile.take_lock(folder):
        if (manifest := storefile.read_manifest(folder)) is not None:
            return manifest
        time.sleep(poll_s)
    if (manifest := storefile.read_manifest(folder)) is not None:  # finished while we waited
        storefile.release_lock(folder)
    return manifest


def _disk_store(folder: Path, samples: Sequence[Sample], job: Job, data: Any, workers: int,
                progress: Callable[[int, int], None] | None) -> ClipStore:
    manifest = storefile.read_manifest(folder) or _wait_for_other_builder(folder)
    if manifest is None:
        try:
            manifest = _build(folder, samples, job, data, workers, progress)
        finally:
            storefile.release_lock(folder)
    return _open(folder, manifest, in_memory=False)


def _ram_store(folder: Path, samples: Sequence[Sample], job: Job, data: Any, workers: int,
               progress: Callable[[int, int], None] | None) -> ClipStore:
    """Build into a private temporary folder, read it into RAM, delete the folder."""
    tmp = folder.with_name(f".{folder.name}.ram-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        manifest = _build(tmp, samples, job, data, workers, progress)
        return _open(tmp, manifest, in_memory=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def build_store(samples: Sequence[Sample], load: Callable, data: Any, *, cache_dir: Path,
                workers: int | None = None, progress: Callable[[int, int], None] | None = None) -> ClipStore:
    """Decode and preprocess ``samples`` (or reuse a cached store for exactly these settings)."""
    key = store_key(data, samples)
    if data.cache == "memory" and key in _MEMORY:
        return _MEMORY[key]
    folder = cache_dir / "clips" / key
    remove_dead(folder.parent, ".*.ram-*")  # RAM-store build folders of killed processes
    job = Job(load=load, params=data.params, modality=data.modality, size=tuple(data.clip.size))
    workers = workers or getattr(data, "workers", None) or default_workers()
    if data.cache == "disk":
        return _disk_store(folder, samples, job, data, workers, progress)
    store = _ram_store(folder, samples, job, data, workers, progress)
    if data.cache == "memory":
        _MEMORY[key] = store
    return store
