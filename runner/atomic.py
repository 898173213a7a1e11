"""Atomic writes: a file under ``artifacts/`` is either absent or complete.

Everything is written to a temporary name in the same folder, flushed to disk, then
renamed over the target (``os.replace`` is atomic on POSIX file systems).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .errors import RunFolderError


def _fsync_dir(folder: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@contextlib.contextmanager
def atomic_path(target: str | Path, *, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path beside ``target``; on success move it over ``target``.

    Works for files and for folders (e.g. a SavedModel) written by other libraries.
    ``suffix`` keeps an extension some writers insist on (``.keras``, ``.onnx``).
    """
    target = Path(target)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp_dir = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    except OSError as exc:
        raise RunFolderError(f"cannot write {target}: {exc.strerror or exc}; check the folder's "
                             "permissions and free space") from exc
    tmp = tmp_dir / (target.name if not suffix else f"{target.stem}{suffix}")
    try:
        yield tmp
        _chmod_readable(tmp)
        if target.is_dir() and tmp.is_dir():
            old = tmp_dir / ".old"
            os.replace(target, old)  # a folder cannot be renamed over another: move the old aside
        os.replace(tmp, target)
        _fsync_dir(target.parent)
    except OSError as exc:
        raise RunFolderError(f"cannot write {target}: {exc.strerror or exc}; check the folder's "
                             "permissions and free space") from exc
    finally:
        shutil.rmtree(tmp_dir, ignore_errors=True)


def _chmod_readable(path: Path) -> None:
    """Temporary files and folders are private (0600/0700); results are ordinary files."""
    if path.is_dir():
        path.chmod(0o755)
    elif path.exists():
        path.chmod(0o644)


@contextlib.contextmanager
def atomic_dir(target: str | Path) -> Iterator[Path]:
    """Yield an empty temporary folder; on success it replaces the folder ``target``."""
    with atomic_path(target) as tmp:
        tmp.mkdir()
        yield tmp


def write_bytes(target: str | Path, data: bytes) -> None:
    with atomic_path(target) as tmp:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())


def write_text(target: str | Path, text: str) -> None:
    write_bytes(target, text.encode("utf-8"))


def write_json(target: str | Path, data: Any) -> None:
    write_text(target, json.dumps(data, indent=2, sort_keys=False, default=_jsonable) + "\n")


def _jsonable(value: Any) -> Any:
    """NumPy scalars and arrays, paths and sets in JSON."""
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, (Path, set, frozenset)):
        return str(value) if isinstance(value, Path) else sorted(value)
    raise TypeError(f"cannot write {type(value).__name__} as JSON")


def read_json(path: str | Path) -> Any:
    return json.loads(Path(path).read_text(encoding="utf-8"))
