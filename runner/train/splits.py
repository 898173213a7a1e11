"""The recipe's folds (via its ``cv`` plugin) and the optional held-out test split, as store
positions."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np

from ..errors import DataError
from ..folds import Fold, listing, metadata


def _test_positions(samples: list, test: Any, seed: int) -> np.ndarray:
    if test.use_dataset_split:
        found = np.flatnonzero([s.split == "test" for s in samples])
        if not len(found):
            raise DataError(samples[0].path, "cv.test.use_dataset_split: the dataset has no 'test' split")
        return found
    from sklearn.model_selection import GroupShuffleSplit, ShuffleSplit

    x = np.zeros((len(samples), 1))
    if test.group_by is None:
        _, held = next(ShuffleSplit(1, test_size=test.fraction, random_state=seed).split(x))
    else:
        groups = metadata(samples, test.group_by, recipe_key="cv.test.group_by")
        _, held = next(GroupShuffleSplit(1, test_size=test.fraction, random_state=seed).split(x, groups=groups))
    return np.sort(held)


def make_splits(ctx: Any, samples: list) -> tuple[list[Fold], np.ndarray | None]:
    """(CV folds over the non-test samples, test positions or None); memoised in ctx.state."""
    if "splits" in ctx.state:
        return ctx.state["splits"]
    cv, seed = ctx.recipe.cv, ctx.recipe.seed
    positions = np.arange(len(samples))
    test = None
    if cv.test is not None:
        test = _test_positions(samples, cv.test, seed)
        positions = np.setdiff1d(positions, test)
    scheme = ctx.regs["cv"].get(cv.scheme)
    folds = []
    for f in scheme.impl("split")([samples[i] for i in positions], params=scheme.own_params(cv), seed=seed):
        def back(idx: np.ndarray | None) -> np.ndarray | None:
            return None if idx is None else positions[idx]

        folds.append(replace(f, train=back(f.train), val=back(f.val), gallery=back(f.gallery), probe=back(f.probe)))
    if test is not None and cv.test.group_by:
        _check_test_disjoint(samples, folds, test, cv.test.group_by)
    ctx.state["splits"] = (folds, test)
    return folds, test


def _check_test_disjoint(samples: list, folds: list[Fold], test: np.ndarray, group_by: str) -> None:
    """The test split may share no ``group_by`` value with the folds: a bad input (exit 2), caught
    before any training (a dataset's own test split is not grouped by gaitrun)."""
    groups = metadata(samples, group_by, recipe_key="cv.test.group_by")
    used = np.concatenate([np.concatenate([f.train, f.val]) for f in folds])
    shared = sorted(set(map(str, groups[used])) & set(map(str, groups[test])))
    if shared:
        raise DataError(samples[int(test[0])].path, f"the test split shares {group_by} {listing(shared)} "
                        f"with the training folds; set cv.test.group_by: null to accept that, or hold "
                        f"out by cv.test.fraction instead of cv.test.use_dataset_split")


def describe(folds: list[Fold], test: np.ndarray | None, samples: list) -> dict:
    """folds.json: sizes and the groups on each side, for checking splits by eye."""
    def subjects(idx: np.ndarray) -> list[str]:
        return sorted({str(samples[i].subject) for i in idx if samples[i].subject is not None})

    out = {"folds": [{"name": f.name, "train": len(f.train), "val": len(f.val),
                      "val_subjects": subjects(f.val)} for f in folds]}
    if test is not None:
        out["test"] = {"samples": len(test), "subjects": subjects(test)}
    return out
