"""Metric-learning losses: batch-all and batch-hard triplet losses (Keras 3, ``keras.ops``).

Embeddings are (B, D) or (B, S, D) -- S strips (GaitSet's 62 horizontal parts), each with its
own loss, averaged over strips as GaitSet and OpenGait do. Distances are Euclidean, optionally
on L2-normalised embeddings. Labels are the class ids (B,) or (B, 1), compared for equality.

* batch-all: every valid triplet (anchor a, positive p != a with the same label, negative n with
  another label) gives relu(d(a, p) - d(a, n) + margin); the loss is the mean over the triplets
  whose loss is positive (0 if there is none).
* batch-hard: for each anchor, relu(max_p d(a, p) - min_n d(a, n) + margin), averaged over the
  anchors that have at least one positive and one negative.

Memory grows as S * B**3 for batch-all (62 strips x 128 samples: ~0.5 GB in float32).

This module imports Keras at module level: import it only where a model is trained or loaded
(importing it registers the loss classes for ``keras.saving.load_model``).
"""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

_MIN_SQUARED_DISTANCE = 1e-12  # keeps sqrt differentiable at 0


def batch_all_triplet_loss(labels: Any, embeddings: Any, margin: float = 0.2, *,
                           normalize: bool = False) -> Any:
    """Mean over positive-loss triplets, per strip, averaged over strips (a scalar tensor)."""
    dist = _distances(embeddings, normalize)  # (S, B, B)
    positive, negative = _label_masks(labels)
    valid = ops.cast(ops.logical_and(positive[:, :, None], negative[:, None, :]), dist.dtype)
    loss = ops.relu(dist[:, :, :, None] - dist[:, :, None, :] + margin) * valid  # (S, a, p, n)
    active = ops.sum(ops.cast(loss > 1e-16, dist.dtype), axis=(1, 2, 3))
    per_strip = ops.sum(loss, axis=(1, 2, 3)) / ops.maximum(active, 1.0)
    return ops.mean(per_strip)


def batch_hard_triplet_loss(labels: Any, embeddings: Any, margin: float = 0.2, *,
                            normalize: bool = False) -> Any:
    """Hardest positive vs hardest negative per anchor, per strip, averaged (a scalar tensor)."""
    dist = _distances(embeddings, normalize)  # (S, B, B)
    positive, negative = _label_masks(labels)
    hardest_positive = ops.max(ops.where(positive[None], dist, 0.0), axis=2)
    far = ops.max(dist) + 1.0
    hardest_negative = ops.min(ops.where(negative[None], dist, far), axis=2)
    anchors = ops.cast(ops.logical_and(ops.any(positive, axis=1), ops.any(negative, axis=1)),
                       dist.dtype)  # (B,)
    loss = ops.relu(hardest_positive - hardest_negative + margin) * anchors  # (S, B)
    per_strip = ops.sum(loss, axis=1) / ops.maximum(ops.sum(anchors), 1.0)
    return ops.mean(per_strip)


def _distances(embeddings: Any, normalize: bool) -> Any:
    """Pairwise Euclidean distances per strip: (B, D) or (B, S, D) -> (S, B, B)."""
    x = ops.convert_to_tensor(embeddings)
    x = ops.expand_dims(x, 0) if len(x.shape) == 2 else ops.transpose(x, (1, 0, 2))
    if normalize:
        x = ops.normalize(x, axis=-1, order=2)
    squared = ops.sum(ops.square(x), axis=-1)  # (S, B)
    dot = ops.matmul(x, ops.transpose(x, (0, 2, 1)))
    d2 = squared[:, :, None] - 2.0 * dot + squared[:, None, :]
    return ops.sqrt(ops.maximum(d2, _MIN_SQUARED_DISTANCE))


def _label_masks(labels: Any) -> tuple[Any, Any]:
    """(positive, negative) boolean (B, B) masks: same label and not itself / other label."""
    labels = ops.reshape(labels, (-1,))
    same = ops.equal(labels[:, None], labels[None, :])
    index = ops.arange(ops.shape(labels)[0])
    itself = ops.equal(index[:, None], index[None, :])
    return ops.logical_and(same, ops.logical_not(itself)), ops.logical_not(same)


class _TripletLoss(keras.losses.Loss):
    """Common part of the triplet-loss classes: ``margin``, ``normalize`` and their config.

    Subclasses set ``function`` to the loss function they wrap.
    """

    def __init__(self, margin: float = 0.2, normalize: bool = False, name: str | None = None,
                 **kwargs: Any):
        super().__init__(name=name, **kwargs)
        self.margin = float(margin)
        self.normalize = bool(normalize)

    def call(self, y_true: Any, y_pred: Any) -> Any:
        return self.function(y_true, y_pred, self.margin, normalize=self.normalize)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "margin": self.margin, "normalize": self.normalize}


@keras.saving.register_keras_serializable(package="gaitrun")
class BatchAllTripletLoss(_TripletLoss):
    """``batch_all_triplet_loss`` as a Keras loss: ``BatchAllTripletLoss(margin=0.2)``."""

    function = staticmethod(batch_all_triplet_loss)

    def __init__(self, margin: float = 0.2, normalize: bool = False,
                 name: str = "batch_all_triplet_loss", **kwargs: Any):
        super().__init__(margin, normalize, name=name, **kwargs)


@keras.saving.register_keras_serializable(package="gaitrun")
class BatchHardTripletLoss(_TripletLoss):
    """``batch_hard_triplet_loss`` as a Keras loss: ``BatchHardTripletLoss(margin=0.2)``."""

    function = staticmethod(batch_hard_triplet_loss)

    def __init__(self, margin: float = 0.2, normalize: bool = False,
                 name: str = "batch_hard_triplet_loss", **kwargs: Any):
        super().__init__(margin, normalize, name=name, **kwargs)


@keras.saving.register_keras_serializable(package="gaitrun")
class SmoothedSparseCrossentropy(keras.losses.Loss):
    """Cross-entropy on class ids with label smoothing (``train.loss.label_smoothing``): the
    one-hot target becomes ``(1 - s) * onehot + s / classes``. Keras' sparse cross-entropy has
    no smoothing, so the ids are one-hot encoded here."""

    def __init__(self, label_smoothing: float = 0.0, **kwargs: Any):
        super().__init__(**kwargs)
        self.label_smoothing = float(label_smoothing)

    def call(self, y_true: keras.KerasTensor, y_pred: keras.KerasTensor) -> keras.KerasTensor:
        ids = ops.cast(ops.reshape(y_true, (-1,)), "int32")
        onehot = ops.one_hot(ids, ops.shape(y_pred)[-1], dtype=y_pred.dtype)
        return keras.losses.categorical_crossentropy(onehot, y_pred, label_smoothing=self.label_smoothing)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "label_smoothing": self.label_smoothing}
