"""Which conv filters to keep: norms, percentile thresholds, minimum counts, rounding (pure NumPy).

Every filter is scored by the L1 or L2 norm of its kernel slice (bias excluded), optionally
normalised per layer. A filter is removed when its score is strictly below the threshold: the
p-th percentile (``np.percentile``) of the scores of all considered filters (``global``) or of
its own layer (``per_layer``); p = 0 removes nothing. Each layer then keeps at least
``min_filters`` filters, and its kept count is rounded to a multiple of ``granularity`` (up, or
to the nearest multiple with ``rounding="nearest"``; never above its filter count nor below one
multiple), adding the highest-scoring removed filters or dropping the lowest-scoring kept ones.
Nearest rounding keeps the share of removed filters near the percentile while every kept count
is a whole number of the runtime's blocks (``granularity: 16`` for AVX-512's 16-wide kernels).

Layers that must keep the same filters (joined by an add) form a *group*: a channel survives
if any member's filter survives, and the count rules apply to the group, ranked by the best
member score. Excluded layers are never considered.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

Criterion = Literal["l1", "l2"]
Normalise = Literal["none", "max", "l2"]
Scope = Literal["global", "per_layer"]
Rounding = Literal["up", "nearest"]


@dataclass(frozen=True)
class Selection:
    """The result: kept filter indices (sorted) and the threshold used, per considered layer."""

    keep: dict[str, np.ndarray]
    thresholds: dict[str, float]
    global_threshold: float | None


def filter_norms(kernel: np.ndarray, criterion: Criterion) -> np.ndarray:
    """The norm of each output filter of a kernel whose last axis is the filters."""
    flat = np.asarray(kernel, dtype=np.float64).reshape(-1, kernel.shape[-1])
    return np.abs(flat).sum(axis=0) if criterion == "l1" else np.sqrt((flat ** 2).sum(axis=0))


def normalise_norms(norms: np.ndarray, mode: Normalise) -> np.ndarray:
    """Divide a layer's norms by their maximum (``max``) or their own L2 norm (``l2``)."""
    scale = {"none": 1.0, "max": np.max(norms), "l2": np.linalg.norm(norms)}[mode]
    return norms / scale if scale > 0 else norms


def kept_count(n_above: int, n_filters: int, *, min_filters: int, granularity: int,
               rounding: Rounding = "up") -> int:
    """How many filters a layer keeps when ``n_above`` reach the threshold."""
    count = max(n_above, min(min_filters, n_filters))
    blocks = -(-count // granularity) if rounding == "up" else max(1, int(count / granularity + 0.5))
    return min(n_filters, blocks * granularity)


def select_filters(
    kernels: Mapping[str, np.ndarray],
    *,
    percentile: float,
    scope: Scope = "global",
    criterion: Criterion = "l1",
    normalise: Normalise = "none",
    min_filters: int = 1,
    granularity: int = 1,
    rounding: Rounding = "up",
    exclude: Iterable[str] = (),
    groups: Iterable[Sequence[str]] = (),
) -> Selection:
    """Choose the filters to keep in each layer of ``kernels`` (name -> kernel, filters last)."""
    if not 0 <= percentile < 100:
        raise ValueError(f"percentile must be in [0, 100), got {percentile}")
    skip = set(exclude)
    units = [u for u in _units(kernels, groups) if not skip & set(u)]
    scores = {name: normalise_norms(filter_norms(kernels[name], criterion), normalise)
              for unit in units for name in unit}
    global_thr = float(np.percentile(np.concatenate(list(scores.values())), percentile)) \
        if scope == "global" and scores else None
    thresholds = {name: global_thr if global_thr is not None else float(np.percentile(s, percentile))
                  for name, s in scores.items()}
    keep: dict[str, np.ndarray] = {}
    for unit in units:
        kept = _select_unit([scores[n] for n in unit], [thresholds[n] for n in unit],
                            min_filters=min_filters, granularity=granularity, rounding=rounding)
        keep.update({name: kept for name in unit})
    return Selection(keep, thresholds, global_thr)


def _units(kernels: Mapping[str, np.ndarray], groups: Iterable[Sequence[str]]) -> list[tuple[str, ...]]:
    """The groups (checked), then every other layer on its own."""
    units = [tuple(g) for g in groups if g]
    grouped = {name for g in units for name in g}
    for g in units:
        missing = [n for n in g if n not in kernels]
        if missing:
            raise ValueError(f"group {list(g)} names layers without a kernel: {missing}")
        if len({kernels[n].shape[-1] for n in g}) != 1:
            raise ValueError(f"the layers of group {list(g)} have different filter counts")
    return units + [(name,) for name in kernels if name not in grouped]


def _select_unit(scores: list[np.ndarray], thresholds: list[float], *, min_filters: int,
                 granularity: int, rounding: Rounding) -> np.ndarray:
    """Kept indices of one layer or group: every channel at or above a member's threshold, then
    the best-scoring others until the count rules are met."""
    above = np.any([s >= t for s, t in zip(scores, thresholds, strict=True)], axis=0)
    best = np.max(scores, axis=0)
    n = len(best)
    count = kept_count(int(above.sum()), n, min_filters=min_filters, granularity=granularity,
                       rounding=rounding)
    order = np.lexsort((np.arange(n), -best, ~above))  # above first, then by score, then index
    return np.sort(order[:count])
