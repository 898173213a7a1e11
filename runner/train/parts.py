"""A fold's training parts built from the recipe, shared by the one-process fit
(``stages/train.py``) and the distributed one (``train/replica.py``): the model (built or
loaded from a checkpoint), its compilation, the training phases, the Keras callbacks and the
train / validation datasets."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..data.pipeline import Augmenter, eval_dataset, train_dataset
from ..keras_io import load_model
from . import precision, setup


def augmenters(ctx: Any) -> list[Augmenter]:
    out = []
    for item in ctx.recipe.augment:
        name = next(iter(type(item).model_fields))
        out.append(Augmenter(name, ctx.regs["augmentations"].get(name).impl("apply"), getattr(item, name)))
    return out


def groups(ctx: Any, prep: Any, positions: np.ndarray) -> np.ndarray | None:
    """Per entry of ``positions``, what balanced sampling balances (``data.balance``), or None."""
    balance = ctx.recipe.data.balance
    if balance == "class":
        return prep.labels[positions]
    if balance == "condition":
        return np.asarray([str(prep.samples[p].condition) for p in positions])
    return None


def build_model(ctx: Any, prep: Any, checkpoint: Any, initial: Any = None) -> Any:
    """The fold's model: loaded from ``checkpoint``, else ``initial``, else built by the architecture."""
    if checkpoint is not None:
        return load_model(checkpoint)
    if initial is not None:  # e.g. a pruned float32 model: fine-tuned in the training precision
        import keras

        return precision.with_policy(initial, keras.mixed_precision.global_policy().name)
    arch = ctx.regs["architectures"].get(ctx.recipe.model.arch)
    return arch.impl("build")(input_shape=prep.input_shape, num_classes=len(prep.class_names),
                              params=ctx.recipe.model.params)


def compile_model(model: Any, train_model: Any, loss: Any, train: Any, *, resumed: bool, optimizer: str,
                  lr: float) -> None:
    if resumed and train_model is model and getattr(model, "optimizer", None) is not None:
        return  # the checkpoint carries the optimizer's state
    metrics = ["accuracy"] if train.loss.name == "cross_entropy" else None
    train_model.compile(optimizer=setup.make_optimizer(optimizer, lr, train.optimizer),
                        loss=loss, loss_weights=setup.loss_weights(train.loss), metrics=metrics)


def phases(ctx: Any, epochs: int, initial: Any) -> list[tuple[int, float, Any]]:
    """(last epoch, lr factor, prepare(model)) per training phase. An architecture with a
    freeze-then-unfreeze schedule answers the optional hook ``head_phase(params)`` (as
    ``transfer`` does) and gets two."""
    hook = ctx.regs["architectures"].get(ctx.recipe.model.arch).hook("head_phase")
    phase = hook(ctx.recipe.model.params) if hook is not None and initial is None else None
    if phase is None or not 0 < phase.epochs < epochs:
        return [(epochs, 1.0, None)]
    return [(phase.epochs, 1.0, None), (epochs, phase.lr_factor, phase.unfreeze)]


def fit_callbacks(train: Any, lr: float, finetune: dict[str, Any] | None, tensorboard: Any = None) -> list[Any]:
    """Schedule and early stopping (or the fine-tune's schedule), and TensorBoard logs written to
    ``tensorboard`` (a folder; None: none)."""
    import keras

    if finetune is None:
        out = setup.schedule_callbacks(train, lr) + setup.early_stopping(train)
    else:
        out = setup.finetune_schedule(finetune["schedule"], lr, finetune["epochs"])
    if train.tensorboard and tensorboard is not None:
        out.append(keras.callbacks.TensorBoard(log_dir=str(tensorboard), write_graph=False))
    return out


def steps_per_epoch(n_positions: int, batch_size: int) -> int:
    return max(1, math.ceil(n_positions / batch_size))


def datasets(ctx: Any, prep: Any, positions: np.ndarray, val: np.ndarray, *, batch_size: int,
             label_of: Any) -> tuple[Any, Any]:
    """(endless training batches over ``positions``, validation batches over ``val``)."""
    recipe = ctx.recipe
    common = {"kind": prep.kind, "frames": recipe.data.clip.frames, "pad": recipe.data.clip.pad, "label_of": label_of}
    train_ds = train_dataset(prep.store, positions, prep.labels, batch_size=batch_size, seed=recipe.seed,
                             augmenters=augmenters(ctx), groups=groups(ctx, prep, positions), **common)
    val_ds, _ = eval_dataset(prep.store, val, prep.labels, stride=recipe.data.clip.stride,
                             batch_size=batch_size, **common)
    return train_ds, val_ds


def class_weights(ctx: Any, prep: Any, positions: np.ndarray) -> dict | None:
    train = ctx.recipe.train
    if train.loss.name != "cross_entropy":
        return None
    return setup.class_weights(train, prep.labels[positions], len(prep.class_names), prep.class_names)
