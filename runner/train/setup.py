"""Recipe ``train:`` settings -> Keras optimizer, loss, callbacks and the model that trains."""

from __future__ import annotations

import math
from typing import Any

from . import precision


def make_optimizer(name: str, lr: float, cfg: Any) -> Any:
    import keras

    common = {"learning_rate": lr, "clipnorm": cfg.clipnorm}
    if name == "sgd":
        return keras.optimizers.SGD(momentum=cfg.momentum, nesterov=cfg.nesterov, **common)
    if name == "rmsprop":
        return keras.optimizers.RMSprop(momentum=cfg.momentum, **common)
    if name == "adamw":
        return keras.optimizers.AdamW(weight_decay=cfg.weight_decay, **common)
    return keras.optimizers.Adam(**common)


def uses_triplet(loss_name: str) -> bool:
    return loss_name in ("triplet_batch_all", "triplet_batch_hard", "ce_triplet")


def _triplet(cfg: Any) -> Any:
    from gaitrun.losses import BatchAllTripletLoss, BatchHardTripletLoss

    cls = BatchHardTripletLoss if cfg.name == "triplet_batch_hard" else BatchAllTripletLoss
    return cls(margin=cfg.margin)


def _embedding_output(model: Any, name: str) -> Any:
    """The embedding layer's output: (B, D), or (B, S, D) strips; 1x1 conv maps are flattened."""
    import keras

    out = model.get_layer(name).output
    return keras.layers.Flatten(name=f"{name}_flat")(out) if len(out.shape) > 3 else out


def cross_entropy(loss_cfg: Any) -> Any:
    """Sparse cross-entropy, with ``label_smoothing`` when the recipe sets it."""
    import keras

    if loss_cfg.label_smoothing > 0:
        from gaitrun.losses import SmoothedSparseCrossentropy

        return SmoothedSparseCrossentropy(label_smoothing=loss_cfg.label_smoothing)
    return keras.losses.SparseCategoricalCrossentropy()


def training_model(model: Any, loss_cfg: Any, outputs: Any) -> tuple[Any, Any, Any]:
    """(model to fit, its loss, how a label becomes the fit target) for the recipe's loss.

    Cross-entropy trains the classifier output; triplet losses train the embedding layer's
    output (the same layers, so the classifier model shares the weights); ``ce_triplet`` trains
    both outputs with ``ce_weight`` on the cross-entropy. ``outputs``: the layer names the
    architecture declares (``gaitrun.outputs.Outputs``)."""
    import keras

    ce = cross_entropy(loss_cfg)
    present = outputs.of(model)
    if loss_cfg.name == "cross_entropy":
        return model, ce, None
    if loss_cfg.name in ("triplet_batch_all", "triplet_batch_hard"):
        if present.logits is None or present.embedding in getattr(model, "output_names", []):
            return model, _triplet(loss_cfg), None
        return keras.Model(model.inputs, _embedding_output(model, present.embedding)), _triplet(loss_cfg), None
    logits = model.get_layer(present.logits).output
    both = keras.Model(model.inputs, [_embedding_output(model, present.embedding), logits])
    return both, [_triplet(loss_cfg), ce], lambda y: (y, y)


def loss_weights(loss_cfg: Any) -> Any:
    return [1.0, loss_cfg.ce_weight] if loss_cfg.name == "ce_triplet" else None


def schedule_callbacks(train: Any, lr: float) -> list[Any]:
    import keras

    s = train.schedule
    if s.name == "reduce_on_plateau":
        return [keras.callbacks.ReduceLROnPlateau(monitor="val_loss", factor=s.factor, patience=s.patience,
                                                  min_lr=s.min_lr)]
    if s.name == "cosine":
        def cosine(epoch: int, _lr: float) -> float:
            if epoch < s.warmup_epochs:
                return lr * (epoch + 1) / s.warmup_epochs
            t = (epoch - s.warmup_epochs) / max(1, train.epochs - s.warmup_epochs)
            return max(s.min_lr, 0.5 * lr * (1 + math.cos(math.pi * t)))
        return [keras.callbacks.LearningRateScheduler(cosine)]
    if s.name == "step":
        return [keras.callbacks.LearningRateScheduler(
            lambda epoch, _lr: max(s.min_lr, lr * s.factor ** (epoch // s.step_epochs)))]
    return []


def finetune_schedule(name: str, lr: float, epochs: int) -> list[Any]:
    """The fine-tune's schedule: ``cosine`` decays ``lr`` to 0 over ``epochs`` (epoch 0 at ``lr``)."""
    import keras

    if name == "constant":
        return []
    return [keras.callbacks.LearningRateScheduler(lambda epoch, _lr: 0.5 * lr * (1 + math.cos(math.pi * epoch / epochs)))]


def early_stopping(train: Any) -> list[Any]:
    import keras

    es = train.early_stopping
    if es is None:
        return []
    return [keras.callbacks.EarlyStopping(monitor=es.monitor, patience=es.patience, min_delta=es.min_delta,
                                          restore_best_weights=es.restore_best)]


def class_weights(train: Any, labels: Any, num_classes: int, class_names: list[str]) -> dict | None:
    import numpy as np

    cw = train.class_weights
    if cw == "none":
        return None
    if cw == "balanced":
        counts = np.bincount(labels, minlength=num_classes).astype(float)
        return {i: (len(labels) / (num_classes * c)) if c else 0.0 for i, c in enumerate(counts)}
    return {i: float(cw.get(name, 1.0)) for i, name in enumerate(class_names)}


def configure_tensorflow(train: Any, seed: int) -> None:
    """Seeds, op determinism and mixed precision, set once before building models."""
    import keras
    import tensorflow as tf

    tf.get_logger().setLevel("ERROR")  # retracing notices for evaluation sub-models are not for users
    keras.utils.set_random_seed(seed)
    if train.deterministic:
        tf.config.experimental.enable_op_determinism()
    set_precision(train)


def set_precision(train: Any) -> None:
    """Set the Keras dtype policy ``train.mixed_precision`` means here; again before each fit:
    ``keras.backend.clear_session()`` between folds resets it to float32."""
    import keras

    keras.mixed_precision.set_global_policy(precision.policy_name(train.mixed_precision))


def distribution_scope(train: Any) -> Any:
    """``strategy: mirrored`` -> a MirroredStrategy scope over the local GPUs; else a no-op."""
    import contextlib

    if train.strategy != "mirrored":
        return contextlib.nullcontext()
    import tensorflow as tf

    return tf.distribute.MirroredStrategy().scope()
