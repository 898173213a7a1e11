"""The prune stage: for every fold, prune the trained model with the recipe's pruner (a
physically smaller model), re-estimate its BatchNorm statistics, score it, fine-tune it, and
score it again with the same evaluation as the unpruned model. Writes
``pruned/`` (model.keras of the best fold, pruning.json, folds/<k>/) and
``plots/filters_kept.png``."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ..atomic import atomic_path, read_json
from ..deploy_data import train_root
from ..errors import StageError
from ..keras_io import load_model
from ..outputs import Outputs, declared_outputs
from ..train import setup
from ..train.evaluation import evaluate_fold
from ..train.fold import finish_fold
from ..train.splits import make_splits
from .data import Prepared, prepared
from .train import headline, release, train_one

if TYPE_CHECKING:
    import keras

    from ..folds import Fold
    from . import RunContext


def _fresh_head(model: keras.Model, outputs: Outputs) -> None:
    """Re-initialise the declared softmax layer (Embedded-Gait fine-tunes with a fresh one)."""
    import keras

    name = outputs.of(model).logits
    if name is None:
        return
    layer = model.get_layer(name)
    init = keras.initializers.GlorotUniform()
    layer.kernel.assign(init(layer.kernel.shape))
    if layer.bias is not None:
        layer.bias.assign(np.zeros(layer.bias.shape, dtype="float32"))


def _prune(ctx: RunContext, model: keras.Model, outputs: Outputs) -> tuple[keras.Model, dict]:
    """Ask the recipe's pruner; its embedding (declared by the architecture) is protected."""
    method = ctx.recipe.prune.method
    pruner = ctx.regs["pruners"].get(method)
    protected = frozenset(n for n in (outputs.embedding,) if n is not None)
    try:
        pruned, report = pruner.impl("prune")(model, params=pruner.own_params(ctx.recipe.prune),
                                              protected=protected)
    except ValueError as exc:  # e.g. prune.exclude naming a layer the model does not have
        raise StageError("prune", f"{exc}; check prune.exclude against the model's layer names") from exc
    if not (isinstance(report, dict) and isinstance(report.get("summary"), str)):
        raise StageError("prune", f"pruner '{method}' must return (model, report) with a one-line "
                         f"report['summary']; fix the plugin")
    return pruned, report


def _recalibrate_bn(ctx: RunContext, prep: Prepared, fold: Fold, model: keras.Model, batches: int) -> int:
    """Re-estimate ``model``'s BatchNorm statistics on ``batches`` batches of windows of the
    fold's training split (seeded, not augmented, in random order: batches of one subject would
    understate the variance); returns the batches used."""
    from ..data.pipeline import eval_dataset
    from ..prune.batchnorm import recalibrate_batchnorm

    if batches == 0:
        return 0
    recipe = ctx.recipe
    size = recipe.train.batch_size
    rng = np.random.default_rng(recipe.seed)
    picks = rng.choice(fold.train, size=min(len(fold.train), batches * size), replace=False)
    ds, _ = eval_dataset(prep.store, picks, None, kind=prep.kind, frames=recipe.data.clip.frames,
                         stride=recipe.data.clip.stride, pad=recipe.data.clip.pad, batch_size=size)
    return recalibrate_batchnorm(model, ds.take(batches))


def prune_fold(ctx: RunContext, prep: Prepared, fold: Fold) -> dict:

    out_dir = ctx.folder.file("pruned", "folds", fold.name)
    if (out_dir / "metrics.json").is_file():
        return read_json(out_dir / "metrics.json")
    out_dir.mkdir(parents=True, exist_ok=True)
    # each fold's surgery and fine-tuning start from the recipe's seed, whatever ran before in
    # this process: 'gaitrun prune RUN' and a run resumed after training fine-tune as the
    # uninterrupted run did, and the prune stage alone no longer runs unseeded
    setup.configure_tensorflow(ctx.recipe.train, ctx.recipe.seed)
    source = train_root(ctx) / "folds" / fold.name / "model.keras"
    model = load_model(source)
    outputs = declared_outputs(ctx)
    pruned, report = _prune(ctx, model, outputs)
    # the unpruned model's scores: the train stage's own evaluation of this very model (a fold's
    # metrics.json is written before its training counts as done, so it is always there)
    before = read_json(train_root(ctx) / "folds" / fold.name / "metrics.json")
    ft = ctx.recipe.prune.finetune_plan(ctx.recipe.train)
    recalibrated = _recalibrate_bn(ctx, prep, fold, pruned, ft["recalibrate_bn"])
    after_prune = evaluate_fold(pruned, prep, fold, ctx.recipe, outputs=outputs)
    if ft["fresh_head"]:
        _fresh_head(pruned, outputs)
    if (out_dir / "model.keras").is_file():  # fine-tuned; the process died while evaluating it
        pruned = load_model(out_dir / "model.keras")
    else:
        if ft["epochs"] > 0:
            pruned = train_one(ctx, prep, fold, out_dir, epochs=ft["epochs"], initial=pruned, finetune=ft)
        pruned = finish_fold(out_dir, pruned)
    after = evaluate_fold(pruned, prep, fold, ctx.recipe, outputs=outputs)
    result = {"fold": fold.name, "report": report, "before": headline(before),
              "bn_recalibration_batches": recalibrated,
              "after_pruning": headline(after_prune), "after_finetune": headline(after), "metrics": after}
    ctx.folder.write_json(f"pruned/folds/{fold.name}/metrics.json", result)
    release()
    return result


def run(ctx: RunContext) -> dict:
    from ..evaluate.classification import aggregate_folds
    from ..prune import plot_filters_kept

    prep = prepared(ctx)
    folds, _ = make_splits(ctx, prep.samples)
    per_fold = [prune_fold(ctx, prep, f) for f in folds]
    best = read_json(train_root(ctx) / "metrics.json")["best_fold"]
    best_result = next(r for r in per_fold if r["fold"] == best)
    with atomic_path(ctx.folder.file("pruned", "model.keras"), suffix=".keras") as tmp:
        tmp.write_bytes(ctx.folder.file("pruned", "folds", best, "model.keras").read_bytes())
    summary = {
        "method": ctx.recipe.prune.method, "summary": best_result["report"]["summary"], "best_fold": best,
        "finetune": ctx.recipe.prune.finetune_plan(ctx.recipe.train),
        "report": best_result["report"],
        "before": aggregate_folds([r["before"] for r in per_fold]),
        "after_pruning": aggregate_folds([r["after_pruning"] for r in per_fold]),
        "after_finetune": aggregate_folds([r["after_finetune"] for r in per_fold]),
    }
    ctx.folder.write_json("pruned/pruning.json", summary)
    plot_filters_kept(best_result["report"], ctx.folder.file("plots", "filters_kept.png"))
    return {}
