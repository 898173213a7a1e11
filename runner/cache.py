"""Where gaitrun keeps generated datasets and preprocessed-tensor caches."""

from __future__ import annotations

import os
from pathlib import Path


def cache_root(configured: str | None = None) -> Path:
    """``data.cache_dir``, else ``$GAITRUN_CACHE``, else ``~/.cache/gaitrun``."""
    if configured:
        return Path(configured).expanduser()
    env = os.environ.get("GAITRUN_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "gaitrun"
