"""Acme's noise augmentation, whose import fails (a broken plugin)."""

from __future__ import annotations

import acme_missing_dependency  # noqa: F401  (not installed: the import fails)
