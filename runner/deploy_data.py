"""Inputs for deployment: evaluation windows of the best fold (for parity scoring) and
calibration windows drawn from its TRAINING split only (for INT8)."""

from __future__ import annotations

from typing import Any

import numpy as np


def windows(prep: Any, positions: np.ndarray, recipe: Any) -> tuple[np.ndarray, np.ndarray]:
    """Every evaluation window of ``positions`` as one float32 array, with each row's owner."""
    from .data.pipeline import eval_dataset

    ds, owners = eval_dataset(prep.store, positions, None, kind=prep.kind, frames=recipe.data.clip.frames,
                              stride=recipe.data.clip.stride, pad=recipe.data.clip.pad,
                              batch_size=256)
    return np.concatenate([b.numpy() for b in ds]).astype(np.float32), owners


def calibration(prep: Any, train_positions: np.ndarray, recipe: Any, n: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` windows drawn (seeded) from the training positions only; also their positions."""
    rng = np.random.default_rng(recipe.seed)
    picks = np.sort(rng.choice(train_positions, size=min(n, len(train_positions)), replace=False))
    x, owners = windows(prep, picks, recipe)
    if len(x) > n:
        keep = np.sort(rng.choice(len(x), size=n, replace=False))
        x, owners = x[keep], owners[keep]
    return x, owners


def best_fold(ctx: Any) -> Any:
    """The fold whose model is deployed (``metrics.json``'s best_fold)."""
    from .atomic import read_json
    from .stages.data import prepared
    from .train.splits import make_splits

    folds, _ = make_splits(ctx, prepared(ctx).samples)
    best = read_json(train_root(ctx) / "metrics.json")["best_fold"]
    return next(f for f in folds if f.name == best)


def train_root(ctx: Any) -> Any:
    """The run folder holding the trained folds (another run's, for ``gaitrun prune RUN``)."""
    from pathlib import Path

    source = ctx.folder.manifest.get("reuses_run")
    return Path(source) if source else ctx.folder.path


def deployed_model_path(ctx: Any) -> Any:
    pruned = ctx.folder.file("pruned", "model.keras")
    if pruned.is_file():
        return pruned
    return train_root(ctx) / "folds" / best_fold(ctx).name / "model.keras"
