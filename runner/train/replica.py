"""The data-parallel training step over an unchanged Keras 3 model, for
``tf.distribute.MultiWorkerMirroredStrategy`` (Keras 3's ``fit`` does not run under it).

Each replica computes its loss's mean on its local batch and scales it by local / global batch, so
that the gradients, summed over the replicas by Keras 3's TF optimizer (``apply`` in replica
context all-reduces them with ``ReduceOp.SUM``, ``_all_reduce_sum_gradients``), are the
gradient of the mean loss over the global batch: the same update one process makes on the
whole batch. Non-trainable float variables (BatchNorm's moving mean and variance) are updated
by each worker from its own batches; ``average_non_trainable`` sets them to their mean over the
workers (once per epoch). The model must be built and compiled inside ``strategy.scope()``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np


def _mean_loss(fn: Any, y: Any, pred: Any, sample_weight: Any) -> Any:
    """One compiled loss's mean over the local batch. ``Loss.call`` and not ``Loss.__call__``:
    under a strategy the latter divides per-sample losses (not scalar ones such as the triplet
    losses) by the number of replicas, which would scale the two kinds differently."""
    import tensorflow as tf

    values = tf.cast(fn.call(y, pred), tf.float32)  # per sample, or one value for the batch
    if values.shape.rank == 0:
        return values
    if sample_weight is not None:
        values *= tf.reshape(sample_weight, [-1] + [1] * (values.shape.rank - 1))
    return tf.reduce_mean(values)  # Keras' "sum_over_batch_size"


def _loss_value(loss: Any, weights: Any, y: Any, pred: Any, sample_weight: Any) -> Any:
    """The compiled loss(es) on one local batch (weighted sum for several outputs)."""
    if not isinstance(loss, (list, tuple)):
        return _mean_loss(loss, y, pred, sample_weight)
    weights = weights or [1.0] * len(loss)
    return sum(w * _mean_loss(fn, t, p, None) for fn, w, t, p in zip(loss, weights, y, pred, strict=True))


def _correct(y: Any, pred: Any) -> Any:
    import tensorflow as tf

    hit = tf.equal(tf.argmax(pred, axis=-1, output_type=tf.int64), tf.cast(tf.reshape(y, [-1]), tf.int64))
    return tf.reduce_sum(tf.cast(hit, tf.float32))


def make_train_step(strategy: Any, model: Any, *, loss: Any, loss_weights: Any, global_batch: int,
                    class_weight: dict | None = None, accuracy: bool = False) -> Callable[[Any], Any]:
    """``step(iterator)``: one optimizer step on the next global batch; returns the global
    [mean loss, correct predictions, samples] (summed over replicas)."""
    import tensorflow as tf

    optimizer = model.optimizer
    cw = None if not class_weight else tf.constant([class_weight[i] for i in range(len(class_weight))], tf.float32)

    def replica(x: Any, y: Any) -> Any:
        local = tf.cast(tf.shape(tf.nest.flatten(x)[0])[0], tf.float32)
        sw = None if cw is None else tf.gather(cw, tf.cast(tf.reshape(y, [-1]), tf.int32))
        with tf.GradientTape() as tape:
            pred = model(x, training=True)
            value = _loss_value(loss, loss_weights, y, pred, sw)
            scaled = value * local / global_batch
            if model.losses:
                scaled += tf.add_n(model.losses) / strategy.num_replicas_in_sync
        grads = tape.gradient(scaled, model.trainable_variables)
        optimizer.apply(grads, model.trainable_variables)  # all-reduces (sums) the gradients
        correct = _correct(y, pred) if accuracy else tf.constant(0.0)
        return tf.stack([value * local, correct, local])

    @tf.function
    def step(iterator: Any) -> Any:
        x, y = next(iterator)
        return strategy.reduce(tf.distribute.ReduceOp.SUM, strategy.run(replica, args=(x, y)), axis=None)

    return step


def make_eval_step(model: Any, *, loss: Any, loss_weights: Any, accuracy: bool) -> Callable[[Any, Any], Any]:
    """``evaluate(x, y)`` on this worker's batch: [loss sum, correct, samples]."""
    import tensorflow as tf

    @tf.function
    def evaluate(x: Any, y: Any) -> Any:
        pred = model(x, training=False)
        n = tf.cast(tf.shape(tf.nest.flatten(x)[0])[0], tf.float32)
        value = _loss_value(loss, loss_weights, y, pred, None)
        return tf.stack([value * n, _correct(y, pred) if accuracy else tf.constant(0.0), n])

    return evaluate


def all_sum(strategy: Any, values: np.ndarray) -> np.ndarray:
    """``values`` (this worker's) summed over every worker: a collective, every worker calls it."""
    import tensorflow as tf

    local_replicas = len(strategy.extended.worker_devices)
    share = tf.constant(np.asarray(values, np.float32) / local_replicas)

    def replica() -> Any:
        return tf.distribute.get_replica_context().all_reduce(tf.distribute.ReduceOp.SUM, share)

    return np.asarray(strategy.experimental_local_results(strategy.run(replica))[0])


def average_non_trainable(strategy: Any, model: Any) -> None:
    """Set each float non-trainable variable (BatchNorm statistics) to its mean over the replicas."""
    import tensorflow as tf

    variables = [v for v in model.non_trainable_variables if v.dtype in ("float16", "float32", "float64")]
    if not variables or strategy.num_replicas_in_sync == 1:
        return

    @tf.function
    def sync() -> None:
        def replica() -> None:
            ctx = tf.distribute.get_replica_context()
            means = ctx.all_reduce(tf.distribute.ReduceOp.MEAN, [tf.identity(v.value) for v in variables])
            for v, m in zip(variables, means, strict=True):
                v.value.assign(m)

        strategy.run(replica)

    sync()
