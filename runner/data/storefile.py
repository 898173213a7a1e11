"""The clip store's on-disk format: one raw frames file appended chunk by chunk, a small
index, and a manifest written last.

::

    <folder>/frames.bin          every kept clip's frames back to back (C order), in the dtype
                                 and frame shape that store.json names
    <folder>/chunks/000042.json  one per committed chunk: its samples' lengths, which samples
                                 it kept, which it skipped and why, where frames.bin ended
    <folder>/index.npz           offsets, lengths, kept (all chunks; written at the end)
    <folder>/skipped.json        the skipped samples of all chunks
    <folder>/store.json          the manifest: the store is complete once it exists

A chunk is committed by syncing ``frames.bin`` and then writing its JSON atomically, so a
build killed at any moment resumes after its last committed chunk (``frames.bin`` is cut
back to that chunk's end). A finished store is never written again: any number of processes
may read it at once (``np.memmap`` or positional reads), on local or shared storage.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
from pathlib import Path
from typing import Any

import numpy as np

from ..atomic import atomic_path, read_json, write_json
from .temporaries import pid_alive

FORMAT = 2
MANIFEST = "store.json"
FRAMES = "frames.bin"
LOCK = "build.lock"


def read_manifest(folder: Path) -> dict[str, Any] | None:
    """The manifest of a complete store of this format in ``folder``, else ``None``."""
    try:
        manifest = read_json(folder / MANIFEST)
    except (OSError, ValueError):
        return None
    return manifest if manifest.get("format") == FORMAT else None


def open_frames(folder: Path, manifest: dict[str, Any], *, in_memory: bool = False) -> np.ndarray:
    """The frames of a complete store: memory-mapped read-only, or read into RAM."""
    shape = (int(manifest["frames"]), *manifest["frame_shape"])
    if in_memory:
        return np.fromfile(folder / FRAMES, dtype=manifest["dtype"]).reshape(shape)
    return np.memmap(folder / FRAMES, dtype=manifest["dtype"], mode="r", shape=shape)


def read_index(folder: Path) -> tuple[dict[str, np.ndarray], list[dict[str, Any]]]:
    with np.load(folder / "index.npz") as index:
        arrays = {k: index[k] for k in ("offsets", "lengths", "kept")}
    return arrays, read_json(folder / "skipped.json")


class StoreWriter:
    """Appends clips to ``folder/frames.bin`` and commits them chunk by chunk; resumes a
    build that stopped, from its last committed chunk."""

    def __init__(self, folder: Path, *, dtype: str):
        self.folder, self.dtype = folder, np.dtype(dtype)
        (folder / "chunks").mkdir(parents=True, exist_ok=True)
        for tmp in [*folder.glob(".*.tmp"), *(folder / "chunks").glob(".*.tmp")]:
            shutil.rmtree(tmp, ignore_errors=True)  # half-written records of a killed build (we hold the lock)
        self.chunks = self._committed()
        last = self.chunks[-1] if self.chunks else {"samples_end": 0, "frames_end": 0, "frame_shape": None}
        self.samples_end, self.frames_end = last["samples_end"], last["frames_end"]
        self.frame_shape = tuple(last["frame_shape"]) if last["frame_shape"] else None
        path = folder / FRAMES
        self.file = open(path, "r+b" if path.exists() else "w+b")  # noqa: SIM115 -- closed in finish/close
        self.file.truncate(self.frames_end * self._frame_bytes())
        self.file.seek(0, os.SEEK_END)
        self.pending: dict[str, list] = {"lengths": [], "kept": [], "skipped": []}

    def _frame_bytes(self) -> int:
        return int(np.prod(self.frame_shape)) * self.dtype.itemsize if self.frame_shape else 0

    def _committed(self) -> list[dict[str, Any]]:
        chunks = []
        while (path := self.folder / "chunks" / f"{len(chunks):06d}.json").is_file():
            chunks.append(json.loads(path.read_text()))
        return chunks

    def fits(self, clip: np.ndarray) -> bool:
        """Whether ``clip``'s frames have the store's frame shape (the first clip sets it)."""
        return self.frame_shape is None or tuple(clip.shape[1:]) == self.frame_shape

    def add(self, index: int, clip: np.ndarray) -> None:
        """Append sample ``index``'s clip (already in the store's dtype and frame shape)."""
        self.frame_shape = self.frame_shape or tuple(clip.shape[1:])
        self.file.write(np.ascontiguousarray(clip, dtype=self.dtype).data)
        self.pending["lengths"].append(len(clip))
        self.pending["kept"].append(index)

    def skip(self, entry: dict[str, Any]) -> None:
        self.pending["skipped"].append(entry)

    def commit(self, samples_end: int) -> None:
        """Make everything added so far durable: samples before ``samples_end`` are done."""
        self.file.flush()
        os.fsync(self.file.fileno())
        self.frames_end += sum(self.pending["lengths"])
        self.samples_end = samples_end
        chunk = {"samples_end": samples_end, "frames_end": self.frames_end,
                 "frame_shape": list(self.frame_shape) if self.frame_shape else None, **self.pending}
        write_json(self.folder / "chunks" / f"{len(self.chunks):06d}.json", chunk)
        self.chunks.append(chunk)
        self.pending = {"lengths": [], "kept": [], "skipped": []}

    def finish(self, extra: dict[str, Any]) -> dict[str, Any]:
        """Write the index and, last, the manifest; the manifest."""
        self.close()
        lengths = np.asarray([n for c in self.chunks for n in c["lengths"]], dtype=np.int64)
        kept = np.asarray([i for c in self.chunks for i in c["kept"]], dtype=np.int64)
        offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64) if len(lengths) else lengths
        with atomic_path(self.folder / "index.npz", suffix=".npz") as tmp:
            np.savez(tmp, offsets=offsets, lengths=lengths, kept=kept)
        write_json(self.folder / "skipped.json", [s for c in self.chunks for s in c["skipped"]])
        manifest = {"format": FORMAT, "dtype": self.dtype.name, "frame_shape": list(self.frame_shape or ()),
                    "frames": self.frames_end, "samples": len(kept), **extra}
        write_json(self.folder / MANIFEST, manifest)
        return manifest

    def close(self) -> None:
        self.file.close()


def take_lock(folder: Path) -> bool:
    """Become ``folder``'s only builder; False while a live process (or another host) builds it.

    The lock of a dead process on this host is taken over: its build resumes.
    """
    folder.mkdir(parents=True, exist_ok=True)
    lock, me = folder / LOCK, f"{socket.gethostname()} {os.getpid()}"
    for _ in range(2):
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            try:
                host, _, pid = lock.read_text().partition(" ")
            except FileNotFoundError:  # its builder just finished
                continue
            if host == socket.gethostname() and pid.isdigit() and (int(pid) == os.getpid() or not pid_alive(int(pid))):
                lock.unlink(missing_ok=True)
                continue
            return False
        with os.fdopen(fd, "w") as fh:
            fh.write(me)
        return True
    return False


def release_lock(folder: Path) -> None:
    (folder / LOCK).unlink(missing_ok=True)
