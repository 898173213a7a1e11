"""Group k-fold that also keeps class shares similar across folds."""

from __future__ import annotations

from ._common import GroupParams as Params
from ._common import grouped

__all__ = ["Params", "split"]


def split(samples, *, params: Params, seed: int):
    from sklearn.model_selection import StratifiedGroupKFold

    return grouped(StratifiedGroupKFold, samples, params, seed, shuffle=True, random_state=seed)
