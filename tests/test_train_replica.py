"""The distributed training step really averages gradients: two Ray Train CPU workers under
MultiWorkerMirroredStrategy end with identical weights, equal (within float tolerance) to one
process trained by the same step on the same global batches; BatchNorm statistics, which each
worker updates from its own batches, are the same on both after ``average_non_trainable``."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.slow

STEPS, GLOBAL, WORKERS = 4, 8, 2


def _data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return rng.normal(size=(STEPS * GLOBAL, 5)).astype("float32"), rng.integers(0, 3, STEPS * GLOBAL)


def _model(batch_norm: bool):
    import keras

    keras.utils.set_random_seed(1)  # the same initial weights in every process
    layers = [keras.Input((5,)), keras.layers.Dense(6, activation="relu")]
    if batch_norm:
        layers.append(keras.layers.BatchNormalization())
    model = keras.Sequential([*layers, keras.layers.Dense(3, activation="softmax")])
    model.compile(optimizer=keras.optimizers.SGD(0.5), loss=keras.losses.SparseCategoricalCrossentropy())
    model.optimizer.build(model.trainable_variables)
    return model


def _train(strategy, rows: list[np.ndarray], batch_norm: bool):
    """Train a fresh model for STEPS steps; ``rows[s]``: this process's rows of global batch s.
    Plain SGD: an update is proportional to the gradient, so a mis-scaled gradient shows."""
    import tensorflow as tf

    from gaitrun.train.replica import make_train_step

    x, y = _data()
    with strategy.scope():
        model = _model(batch_norm)
    ds = tf.data.Dataset.from_tensor_slices((x[np.concatenate(rows)], y[np.concatenate(rows)]))
    local = len(rows[0])
    it = iter(strategy.distribute_datasets_from_function(lambda _: ds.batch(local)))
    step = make_train_step(strategy, model, loss=model.loss, loss_weights=None, global_batch=GLOBAL)
    for _ in range(STEPS):
        step(it)
    return model


def _worker(config: dict) -> None:
    import ray.train
    import tensorflow as tf

    from gaitrun.train.replica import average_non_trainable

    rank = ray.train.get_context().get_world_rank()
    strategy = tf.distribute.MultiWorkerMirroredStrategy()
    half = GLOBAL // WORKERS
    rows = [np.arange(s * GLOBAL + rank * half, s * GLOBAL + (rank + 1) * half) for s in range(STEPS)]
    plain = _train(strategy, rows, batch_norm=False)
    bn = _train(strategy, rows, batch_norm=True)
    before = [v.numpy() for v in bn.non_trainable_variables]
    average_non_trainable(strategy, bn)
    np.savez(Path(config["out"]) / f"rank{rank}.npz", *[w for w in plain.get_weights()],
             **{f"bn_before_{i}": v for i, v in enumerate(before)},
             **{f"bn_after_{i}": v.numpy() for i, v in enumerate(bn.non_trainable_variables)})


def test_two_workers_equal_one_process_on_the_same_global_batches(tmp_path):
    import ray
    import tensorflow as tf
    from ray import cloudpickle
    from ray.train import RunConfig, ScalingConfig
    from ray.train.tensorflow import TensorflowTrainer

    cloudpickle.register_pickle_by_value(sys.modules[__name__])  # workers cannot import tests/
    ray.init(address="local", num_cpus=WORKERS, include_dashboard=False, log_to_driver=False)
    try:
        TensorflowTrainer(_worker, train_loop_config={"out": str(tmp_path)},
                          scaling_config=ScalingConfig(num_workers=WORKERS),
                          run_config=RunConfig(name="grad", storage_path=str(tmp_path / "ray"))).fit()
    finally:
        ray.shutdown()
    ranks = [np.load(tmp_path / f"rank{r}.npz") for r in range(WORKERS)]
    weights = [[r[f"arr_{i}"] for i in range(4)] for r in ranks]
    reference = _train(tf.distribute.get_strategy(), [np.arange(s * GLOBAL, (s + 1) * GLOBAL) for s in range(STEPS)],
                       batch_norm=False).get_weights()
    initial = _model(batch_norm=False).get_weights()
    for w0, w1, ref, init in zip(*weights, reference, initial, strict=True):
        np.testing.assert_array_equal(w0, w1)  # the all-reduced update is the same on both
        np.testing.assert_allclose(w0, ref, rtol=1e-4, atol=1e-5)
        assert not np.allclose(ref, init)  # it did train
    names = [k for k in ranks[0].files if k.startswith("bn_after_")]
    assert names and any(not np.allclose(ranks[0][k.replace("after", "before")], ranks[1][k.replace("after", "before")])
                         for k in names)  # each worker's statistics came from its own batches
    for k in names:
        np.testing.assert_array_equal(ranks[0][k], ranks[1][k])
        np.testing.assert_allclose(ranks[0][k], (ranks[0][k.replace("after", "before")]
                                                 + ranks[1][k.replace("after", "before")]) / 2, rtol=1e-5)
