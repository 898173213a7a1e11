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


def calibration_for(ctx: Any, precision: str) -> np.ndarray:
    """INT8 calibration windows of the deployed fold's training split (empty for other precisions)."""
    from .stages.data import prepared

    if precision != "int8":
        return np.zeros((0, *prepared(ctx).input_shape), np.float32)
    if "calibration" not in ctx.state:  # the deployed export and the unpruned INT8 variant share them
        ctx.state["calibration"] = calibration(prepared(ctx), best_fold(ctx).train, ctx.recipe,
                                               ctx.recipe.deploy.calibration_samples)[0]
    return ctx.state["calibration"]


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


def pruned_root(ctx: Any) -> Any:
    """The run folder holding the pruned models this run deploys: its own, or for ``gaitrun export
    RUN --set ...`` the one RUN deployed (RUN itself, or the run RUN took them from)."""
    from pathlib import Path

    if ctx.folder.file("pruned", "model.keras").is_file():
        return ctx.folder.path
    source = ctx.folder.manifest.get("reuses_pruned")
    return Path(source) if source else train_root(ctx)


def pruned_model_path(ctx: Any) -> Any:
    """The pruned model this run deploys, or None when the recipe does not prune."""
    path = pruned_root(ctx) / "pruned" / "model.keras"
    return path if ctx.recipe.prune is not None and path.is_file() else None


def deployed_model_path(ctx: Any) -> Any:
    """The pruned model if the recipe prunes (this run's, or the reused run's), else the best fold's."""
    pruned = pruned_model_path(ctx)
    return pruned if pruned is not None else train_root(ctx) / "folds" / best_fold(ctx).name / "model.keras"
