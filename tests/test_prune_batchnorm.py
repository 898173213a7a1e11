"""Re-estimating BatchNorm statistics after surgery: the moving statistics become the mean of
the batches' own statistics, nothing else in the model changes."""

from __future__ import annotations

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from gaitrun.prune.batchnorm import recalibrate_batchnorm  # noqa: E402


def _model(batch_norm: bool) -> keras.Model:
    inputs = keras.Input((4, 4, 2))
    x = keras.layers.Conv2D(3, 1, use_bias=False, name="conv")(inputs)
    if batch_norm:
        x = keras.layers.BatchNormalization(momentum=0.9, name="bn")(x)
    x = keras.layers.Flatten()(x)
    return keras.Model(inputs, keras.layers.Dense(2, name="head")(x))


def test_moving_statistics_become_the_mean_of_the_batches_statistics():
    keras.utils.set_random_seed(0)
    model = _model(batch_norm=True)
    bn = model.get_layer("bn")
    bn.moving_mean.assign(np.full(3, 5.0, np.float32))
    bn.moving_variance.assign(np.full(3, 9.0, np.float32))
    weights = [w.numpy().copy() for w in model.trainable_weights]
    rng = np.random.default_rng(1)
    batches = [rng.normal(loc, 1.0, (8, 4, 4, 2)).astype(np.float32) for loc in (0.0, 1.0, 3.0)]

    assert recalibrate_batchnorm(model, iter(batches)) == 3

    kernel = model.get_layer("conv").kernel.numpy().reshape(2, 3)
    conv = [(b.reshape(-1, 2) @ kernel) for b in batches]  # a 1x1 convolution, per pixel
    np.testing.assert_allclose(bn.moving_mean.numpy(), np.mean([c.mean(0) for c in conv], axis=0), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(bn.moving_variance.numpy(), np.mean([c.var(0) for c in conv], axis=0), rtol=1e-4)
    assert bn.momentum == 0.9  # restored
    for before, after in zip(weights, model.trainable_weights, strict=True):
        np.testing.assert_array_equal(before, after.numpy())  # no gradient step


def test_a_model_without_batchnorm_is_left_alone():
    model = _model(batch_norm=False)
    assert recalibrate_batchnorm(model, iter([np.zeros((2, 4, 4, 2), np.float32)])) == 0
