"""K-fold by groups (subject by default): no group is in both train and validation."""

from __future__ import annotations

from ._common import GroupParams as Params
from ._common import grouped

__all__ = ["Params", "split"]


def split(samples, *, params: Params, seed: int):
    from sklearn.model_selection import GroupKFold

    return grouped(GroupKFold, samples, params, seed, shuffle=True, random_state=seed)
