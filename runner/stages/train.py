"""The train stage: for each fold, build the architecture, fit it on the tf.data pipeline
with per-epoch checkpoints, evaluate it, and write ``folds/<k>/`` (history.csv,
metrics.json, model.keras); then ``metrics.json`` (per fold, mean +- std, test split),
``folds.json`` and the plots."""

from __future__ import annotations

import gc
from typing import TYPE_CHECKING, Any

import numpy as np

from ..atomic import read_json
from ..data.pipeline import oversampled
from ..keras_io import load_model
from ..outputs import declared_outputs
from ..train import distributed, parts, precision, setup
from ..train.evaluation import evaluate_fold
from ..train.fold import FitPlan, finish_fold, fit_fold, resume_point
from ..train.splits import describe, make_splits
from .data import Prepared, prepared

if TYPE_CHECKING:
    from ..folds import Fold
    from . import RunContext


def train_one(ctx: RunContext, prep: Prepared, fold: Fold, folder: Any, *, epochs: int, initial: Any = None,
              finetune: dict[str, Any] | None = None) -> Any:
    """Fit a model on ``fold.train`` (resuming from checkpoints in ``folder``); returns it.
    ``initial`` fine-tunes a given model (e.g. a pruned one) instead of building the recipe's,
    with the optimizer, lr and schedule of ``finetune`` (``PruneBase.finetune_plan``)."""
    recipe, train = ctx.recipe, ctx.recipe.train
    done, checkpoint, history = resume_point(folder)
    setup.set_precision(train)
    optimizer, lr = (finetune["optimizer"], finetune["lr"]) if finetune else (train.optimizer.name, train.optimizer.lr)
    with setup.distribution_scope(train):
        model = parts.build_model(ctx, prep, checkpoint, initial)
    positions = oversampled(fold.train, prep.labels[fold.train]) if recipe.data.oversample else fold.train
    ctx.callbacks.on_fold_start(fold.name, epochs - done)
    for until, factor, prepare in parts.phases(ctx, epochs, initial):
        if done >= until:
            continue
        resumed = checkpoint is not None and prepare is None
        if prepare is not None:
            prepare(model)
        with setup.distribution_scope(train):
            train_model, loss, label_of = setup.training_model(model, train.loss, declared_outputs(ctx))
            parts.compile_model(model, train_model, loss, train, resumed=resumed, optimizer=optimizer, lr=lr * factor)
        train_ds, val_ds = parts.datasets(ctx, prep, positions, fold.val, batch_size=train.batch_size, label_of=label_of)
        plan = FitPlan(folder=folder, epochs=until, steps_per_epoch=parts.steps_per_epoch(len(positions), train.batch_size),
                       callbacks=parts.fit_callbacks(train, lr * factor, finetune, folder / "tensorboard"),
                       class_weight=parts.class_weights(ctx, prep, positions),
                       on_epoch=lambda e, logs: ctx.callbacks.on_epoch_end(fold.name, e, logs),
                       validate_every=train.validate_every)
        history = fit_fold(train_model, model, train_ds, val_ds, plan, initial_epoch=done, history=history)
        done = max(done, len(history))
        if train_model.stop_training:
            break  # early stopping ends every phase
    return model


def run_fold(ctx: RunContext, prep: Prepared, fold: Fold, cluster: str | None = None) -> dict:
    folder = ctx.folder.file("folds", fold.name)
    if (folder / "metrics.json").is_file():
        return read_json(folder / "metrics.json")  # finished before an interruption
    folder.mkdir(parents=True, exist_ok=True)
    trained_in = precision.policy_name(ctx.recipe.train.mixed_precision)
    if (folder / "model.keras").is_file():  # trained; the process died while evaluating it
        model = load_model(folder / "model.keras")
    elif cluster is not None:  # train.distributed: Ray Train workers write the fold's files
        ctx.callbacks.on_fold_start(fold.name, ctx.recipe.train.epochs - resume_point(folder)[0])
        distributed.train_fold(ctx, fold, folder, cluster)
        model = load_model(folder / "model.keras")
    else:
        model = train_one(ctx, prep, fold, folder, epochs=ctx.recipe.train.epochs)
        trained_in = precision.policy_of(model)
        model = finish_fold(folder, model)  # float32 from here on
    metrics = {"fold": fold.name, "train_samples": len(fold.train), "val_samples": len(fold.val),
               "training_precision": trained_in,
               **evaluate_fold(model, prep, fold, ctx.recipe, outputs=declared_outputs(ctx),
                               save_to=folder / "embeddings.npz")}
    ctx.folder.write_json(f"folds/{fold.name}/metrics.json", metrics)
    ctx.callbacks.on_fold_end(fold.name, headline(metrics))
    release()
    return metrics


def headline(metrics: dict) -> dict[str, float]:
    """The scalar figures of a fold's metrics, flattened (``accuracy``, ``rank1_nm`` per sequence,
    ``rank1_window_nm`` per window, ...)."""
    out = {}
    for key, value in metrics.get("classification", {}).items():
        if isinstance(value, float):
            out[key] = value
    knn = metrics.get("knn", {})
    for table in ("rank1", "rank1_window"):
        for cond, value in (knn.get(table) or {}).items():
            if isinstance(value, (int, float)):
                out[f"{table}_{cond}"] = float(value)
    return out


def release() -> None:
    """Free Keras/TF state between folds so host memory does not grow fold after fold."""
    import keras

    keras.backend.clear_session()
    gc.collect()


def run(ctx: RunContext) -> dict:
    from ..evaluate.classification import aggregate_folds

    prep = prepared(ctx)
    folds, test = make_splits(ctx, prep.samples)
    ctx.folder.write_json("folds.json", describe(folds, test, prep.samples))
    setup.configure_tensorflow(ctx.recipe.train, ctx.recipe.seed)
    with distributed.cluster(ctx.recipe) as target:
        per_fold = [run_fold(ctx, prep, fold, target) for fold in folds]
    summary = aggregate_folds([headline(m) for m in per_fold])
    result = {"folds": per_fold, "summary": summary, "best_fold": _best(per_fold)}
    if test is not None:
        result["test"] = _score_test(ctx, prep, test, result["best_fold"])
    ctx.folder.write_json("metrics.json", result)
    _plots(ctx, per_fold)
    return {}


def _best(per_fold: list[dict]) -> str:
    def score(m: dict) -> float:
        h = headline(m)
        return h.get("accuracy", h.get("rank1_nm", float(np.mean(list(h.values())) if h else 0.0)))

    return max(per_fold, key=score)["fold"]


def _score_test(ctx: RunContext, prep: Prepared, test: np.ndarray, best: str) -> dict:
    import keras

    from ..folds import Fold
    from ..train.evaluation import evaluate_fold

    model = keras.saving.load_model(ctx.folder.file("folds", best, "model.keras"), safe_mode=True)
    fold = Fold(name="test", train=np.setdiff1d(np.arange(len(prep.samples)), test), val=test)
    out = {"model": f"folds/{best}/model.keras",
           **evaluate_fold(model, prep, fold, ctx.recipe, outputs=declared_outputs(ctx),
                           save_to=ctx.folder.file("test", "embeddings.npz"))}
    release()
    return out


def _plots(ctx: RunContext, per_fold: list[dict]) -> None:
    if not ctx.recipe.evaluate.plots:
        return
    from ..evaluate import plots

    folder = ctx.folder
    histories = {m["fold"]: folder.file("folds", m["fold"], "history.csv") for m in per_fold}
    plots.plot_learning_curves({k: v for k, v in histories.items() if v.is_file()}, folder.file("plots", "learning_curves.png"))
    first = per_fold[0]
    cm = first.get("classification", {}).get("confusion_matrix")
    if cm is not None:
        names = first["classification"].get("class_names") or []
        plots.plot_confusion_matrix(cm, names, folder.file("plots", "confusion_matrix.png"))
    knn = first.get("knn", {})
    matrix = knn.get("rank1_matrix") or knn.get("rank1_window_matrix")
    if matrix:
        plots.plot_rank1_heatmap(matrix, knn.get("views", []), folder.file("plots", "rank1_per_view.png"))
