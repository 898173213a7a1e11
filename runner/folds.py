"""Folds: which samples train and which evaluate, as index arrays into the sample list."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .data.records import Sample
from .errors import DataError


@dataclass(frozen=True)
class Fold:
    """One train/evaluation split. For gallery/probe protocols, ``gallery`` and ``probe``
    partition ``val`` (index arrays into the same sample list)."""

    name: str
    train: np.ndarray
    val: np.ndarray
    gallery: np.ndarray | None = None
    probe: np.ndarray | None = None


def metadata(samples: Sequence[Sample], key: str, *, recipe_key: str = "cv.group_by") -> np.ndarray:
    """The metadata field ``key`` of every sample, as strings; refuse missing values, naming
    the recipe key that asked for the field."""
    values = [s.meta(key) for s in samples]
    missing = [s.path for s, v in zip(samples, values, strict=False) if v is None]
    if missing:
        raise DataError(missing[0], f"has no '{key}' metadata ({len(missing)} samples lack it); "
                        f"choose another {recipe_key} field")
    return np.asarray([str(v) for v in values])


def listing(values: Sequence[object], most: int = 5) -> str:
    """``'001', '002' (+3 more)``: values for a message, as plain strings (no NumPy reprs)."""
    shown = ", ".join(f"'{v}'" for v in list(values)[:most])
    return shown + (f" (+{len(values) - most} more)" if len(values) > most else "")


def labels(samples: Sequence[Sample]) -> np.ndarray:
    return np.asarray([s.label for s in samples])


def check_disjoint(fold: Fold, groups: np.ndarray) -> None:
    """Raise if a group appears on both sides of ``fold`` (a leak)."""
    shared = set(groups[fold.train]) & set(groups[fold.val])
    if shared:
        raise AssertionError(f"fold {fold.name}: groups {listing(sorted(map(str, shared)))} in train "
                             f"and validation")
