"""K-fold keeping each class's share equal across folds."""

from __future__ import annotations

from ._common import KFoldParams as Params
from ._common import run_splitter

__all__ = ["Params", "split"]


def split(samples, *, params: Params, seed: int):
    from sklearn.model_selection import StratifiedKFold

    rs = seed if params.shuffle else None
    return run_splitter(StratifiedKFold(params.folds, shuffle=params.shuffle, random_state=rs), samples)
