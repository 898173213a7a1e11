"""Shared pieces of the cross-validation plugins (scikit-learn splitters underneath)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class KFoldParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    folds: int = Field(5, ge=2, le=1000, description="number of folds")
    shuffle: bool = Field(True, description="shuffle before splitting (seeded)")


class GroupParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    folds: int = Field(5, ge=2, le=1000, description="number of folds")
    group_by: str = Field("subject", min_length=1, description="metadata field no fold may split")


def run_splitter(splitter: Any, samples: Sequence[Any], *, groups: Any = None) -> list[Any]:
    """Turn a scikit-learn splitter into Folds; grouped folds are checked for leaks."""
    import numpy as np

    from gaitrun.folds import Fold, check_disjoint, labels

    x = np.zeros((len(samples), 1))
    y = labels(samples)
    folds = []
    for k, (train, val) in enumerate(splitter.split(x, y, groups)):
        fold = Fold(name=str(k), train=np.sort(train), val=np.sort(val))
        if groups is not None:
            check_disjoint(fold, groups)
        folds.append(fold)
    return folds


def grouped(splitter_cls: Any, samples: Sequence[Any], params: GroupParams, seed: int,
            **kwargs: Any) -> list[Any]:
    from gaitrun.folds import metadata

    groups = metadata(samples, params.group_by)
    n_groups = len(set(groups))
    if n_groups < params.folds:
        from gaitrun.errors import DataError

        raise DataError(samples[0].path if samples else "<no samples>",
                        f"only {n_groups} distinct '{params.group_by}' values for {params.folds} "
                        f"folds; lower cv.folds")
    return run_splitter(splitter_cls(n_splits=params.folds, **kwargs), samples, groups=groups)
