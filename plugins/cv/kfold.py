"""Plain k-fold over samples (sequences of one subject may land on both sides)."""

from __future__ import annotations

from ._common import KFoldParams as Params
from ._common import run_splitter

__all__ = ["Params", "split"]


def split(samples, *, params: Params, seed: int):
    from sklearn.model_selection import KFold

    rs = seed if params.shuffle else None
    return run_splitter(KFold(params.folds, shuffle=params.shuffle, random_state=rs), samples)
