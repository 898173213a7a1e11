"""Temporary folders named after the process that writes them (``<name>.tmp-<pid>``): a
killed writer leaves its folder behind, and the next writer removes the folders of processes
that no longer run (never those of a live one, which may still be writing)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path


def pid_alive(pid: int) -> bool:
    """Whether a process with this id runs on this machine."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it runs, as another user
        return True
    return True


def remove_dead(folder: Path, pattern: str) -> list[Path]:
    """Remove the entries of ``folder`` matching ``pattern`` (a glob ending in ``-<pid>``)
    whose process is dead; the removed paths."""
    removed = []
    for tmp in sorted(folder.glob(pattern)) if folder.is_dir() else []:
        pid = tmp.name.rpartition("-")[2]
        if pid.isdigit() and int(pid) != os.getpid() and not pid_alive(int(pid)):
            shutil.rmtree(tmp, ignore_errors=True)
            removed.append(tmp)
    return removed
