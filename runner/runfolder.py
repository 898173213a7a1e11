"""Run folders: ``artifacts/<name>/<UTC time>-<recipe hash 8>/`` with the resolved recipe
and a manifest that records every stage's status, so ``gaitrun resume`` knows where to go on.

Layout (see the README): recipe.yaml, manifest.json, metrics.json, folds/<k>/, pruned/,
export/, bench.json, plots/, report.md. Every file is written atomically. A process that
creates or opens a run folder holds an advisory lock on its ``.lock`` file until it exits, so
two processes never run stages in (or clean temporaries out of) the same folder at once.
"""

from __future__ import annotations

import fcntl
import os
import platform
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

from . import __version__
from .atomic import read_json, write_json, write_text
from .errors import RunFolderError

STATUSES = ("pending", "running", "done", "failed", "deferred")
FINISHED = ("done", "deferred")
_LOCKS: dict[Path, int] = {}  # run folder -> open file descriptor of its held .lock
PACKAGES = ("tensorflow", "keras", "numpy", "pydantic", "ruamel.yaml", "ray", "scikit-learn",
            "onnx", "onnxruntime", "tf2onnx", "opencv-python-headless", "h5py", "tensorrt")


def default_artifacts() -> Path:
    return Path(os.environ.get("GAITRUN_ARTIFACTS", "artifacts"))


def _versions() -> dict[str, str]:
    out = {"python": platform.python_version(), "gaitrun": __version__}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


def _git_commit() -> str | None:
    try:
        res = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5,
                             cwd=Path(__file__).resolve().parent)
    except (OSError, subprocess.SubprocessError):
        return None
    return res.stdout.strip() or None if res.returncode == 0 else None


def utc_stamp() -> str:
    return datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")


def unique_folder(base: Path, stem: str, *, what: str, suffix: str = "") -> Path:
    """Create ``base/<stem><suffix>`` (``<stem>-2<suffix>``... if taken) and return it."""
    path = base / f"{stem}{suffix}"
    for n in range(2, 1000):
        if not path.exists():
            break
        path = base / f"{stem}-{n}{suffix}"
    try:
        path.mkdir(parents=True)
    except OSError as exc:
        raise RunFolderError(f"cannot create {what} {path}: {exc.strerror}; check that "
                             f"{base} is writable (or set GAITRUN_ARTIFACTS)") from exc
    return path


def lock(folder: Path) -> None:
    """Hold an exclusive lock on ``folder/.lock`` for the rest of this process (the kernel
    drops it when the process ends, even after kill -9); another holder is an error."""
    key = folder.resolve()
    if key in _LOCKS:
        return
    try:
        fd = os.open(key / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise RunFolderError(f"cannot lock {folder}: {exc.strerror}; check the folder's permissions") from exc
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise RunFolderError(f"{folder} is in use by another gaitrun process; wait for it to end "
                             "(or stop it) and try again") from None
    _LOCKS[key] = fd


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


@dataclass
class RunFolder:
    """One run's folder and its manifest (kept in memory, saved atomically on change)."""

    path: Path
    manifest: dict[str, Any]

    # --- creation and opening ------------------------------------------------------------
    @classmethod
    def create(cls, loaded: Any, stages: list[str], *, artifacts: Path | None = None,
               parent: Path | None = None) -> RunFolder:
        """A new folder for ``loaded`` (a LoadedRecipe) under ``artifacts/<name>/``
        (or directly under ``parent``, for sweep trials)."""
        base = parent if parent is not None else (artifacts or default_artifacts()) / loaded.recipe.name
        path = unique_folder(base, f"{utc_stamp()}-{loaded.hash}", what="run folder")
        manifest = {
            "run_id": path.name, "name": loaded.recipe.name, "recipe_hash": loaded.hash,
            "seed": loaded.recipe.seed, "created": now(), "source": str(loaded.path),
            "versions": _versions(), "git_commit": _git_commit(),
            "host": {"name": socket.gethostname(), "platform": platform.platform(),
                     "cpus": os.cpu_count(), "python": sys.executable},
            "stages": [{"name": s, "status": "pending", "reason": None, "started": None, "ended": None}
                       for s in stages],
        }
        folder = cls(path, manifest)
        lock(path)
        write_text(path / "recipe.yaml", loaded.yaml())
        folder.save()
        return folder

    @classmethod
    def open(cls, path: str | Path) -> RunFolder:
        path = Path(path)
        manifest_path = path / "manifest.json"
        if not manifest_path.is_file():
            raise RunFolderError(f"{path} is not a run folder (no manifest.json); give a folder like "
                                 "artifacts/<name>/<run id>/")
        try:
            manifest = read_json(manifest_path)
        except ValueError as exc:
            raise RunFolderError(f"{manifest_path}: not valid JSON ({exc})") from exc
        folder = cls(path, manifest)
        lock(path)
        folder.remove_temporaries()
        return folder

    def remove_temporaries(self) -> None:
        """Delete what atomic writes of a killed process left (``.<name>.<random>.tmp``)."""
        for tmp in sorted(self.path.rglob(".*.tmp"), key=lambda p: len(p.parts)):
            if tmp.is_dir():
                shutil.rmtree(tmp, ignore_errors=True)
            else:
                tmp.unlink(missing_ok=True)

    def close(self) -> None:
        """Release this process's lock on the folder (it is released at exit anyway)."""
        fd = _LOCKS.pop(self.path.resolve(), None)
        if fd is not None:
            os.close(fd)

    # --- manifest ----------------------------------------------------------------------------
    def save(self) -> None:
        write_json(self.path / "manifest.json", self.manifest)

    def stage(self, name: str) -> dict[str, Any]:
        for entry in self.manifest["stages"]:
            if entry["name"] == name:
                return entry
        raise KeyError(name)

    def set_status(self, name: str, status: str, reason: str | None = None) -> None:
        assert status in STATUSES, status
        entry = self.stage(name)
        entry["status"], entry["reason"] = status, reason
        if status == "running":
            entry["started"], entry["ended"] = now(), None
        elif status != "pending":
            entry["ended"] = now()
        self.save()

    def pending_stages(self) -> list[str]:
        """Stages still to run, in order (a stage left 'running' by a crash runs again)."""
        return [s["name"] for s in self.manifest["stages"] if s["status"] not in FINISHED]

    def is_finished(self) -> bool:
        return not self.pending_stages()

    # --- files -------------------------------------------------------------------------------
    def file(self, *parts: str) -> Path:
        return self.path.joinpath(*parts)

    def write_json(self, rel: str, data: Any) -> Path:
        target = self.file(rel)
        write_json(target, data)
        return target

    def write_text(self, rel: str, text: str) -> Path:
        target = self.file(rel)
        write_text(target, text)
        return target


def elapsed(start: float) -> float:
    return round(time.perf_counter() - start, 3)
