"""What an export wrote: file records with sizes. (Atomic writes live in ``gaitrun.atomic``.)"""

from __future__ import annotations

from pathlib import Path


def file_record(root: Path, path: Path) -> dict[str, object]:
    """``{"path": <relative to root>, "bytes": <size>}``; a folder's size is the sum of its files."""
    size = path.stat().st_size if path.is_file() else sum(p.stat().st_size for p in path.rglob("*")
                                                           if p.is_file())
    return {"path": path.relative_to(root).as_posix(), "bytes": size}
