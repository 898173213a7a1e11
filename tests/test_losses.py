"""Triplet losses against a plain NumPy computation, in eager and graph mode."""

from __future__ import annotations

import itertools

import keras
import numpy as np
import pytest
import tensorflow as tf

from gaitrun.losses import (
    BatchAllTripletLoss,
    BatchHardTripletLoss,
    batch_all_triplet_loss,
    batch_hard_triplet_loss,
)

LABELS = np.array([0, 0, 1, 1, 1, 2, 3, 3], dtype=np.int64)  # label 2 has no positive


def numpy_strips(embeddings: np.ndarray, normalize: bool) -> list[np.ndarray]:
    strips = [embeddings] if embeddings.ndim == 2 else list(embeddings.transpose(1, 0, 2))
    if normalize:
        strips = [s / np.linalg.norm(s, axis=1, keepdims=True) for s in strips]
    return strips


def numpy_distances(x: np.ndarray) -> np.ndarray:
    return np.sqrt(((x[:, None, :] - x[None, :, :]) ** 2).sum(-1))


def numpy_batch_all(labels, embeddings, margin, normalize=False) -> float:
    per_strip = []
    for x in numpy_strips(embeddings, normalize):
        d = numpy_distances(x)
        losses = [max(d[a, p] - d[a, n] + margin, 0.0)
                  for a, p, n in itertools.product(range(len(labels)), repeat=3)
                  if a != p and labels[a] == labels[p] and labels[n] != labels[a]]
        positive = [v for v in losses if v > 1e-16]
        per_strip.append(np.mean(positive) if positive else 0.0)
    return float(np.mean(per_strip))


def numpy_batch_hard(labels, embeddings, margin, normalize=False) -> float:
    per_strip = []
    for x in numpy_strips(embeddings, normalize):
        d = numpy_distances(x)
        losses = []
        for a in range(len(labels)):
            pos = [d[a, p] for p in range(len(labels)) if p != a and labels[p] == labels[a]]
            neg = [d[a, n] for n in range(len(labels)) if labels[n] != labels[a]]
            if pos and neg:
                losses.append(max(max(pos) - min(neg) + margin, 0.0))
        per_strip.append(np.mean(losses))
    return float(np.mean(per_strip))


def embeddings(shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=shape).astype(np.float32)


CASES = [
    pytest.param(batch_all_triplet_loss, numpy_batch_all, id="batch_all"),
    pytest.param(batch_hard_triplet_loss, numpy_batch_hard, id="batch_hard"),
]


@pytest.mark.parametrize(("loss", "reference"), CASES)
@pytest.mark.parametrize("shape", [(8, 5), (8, 3, 4)], ids=["B,D", "B,S,D"])
@pytest.mark.parametrize("normalize", [False, True])
def test_matches_numpy(loss, reference, shape, normalize):
    x = embeddings(shape)
    margin = 0.2 if not normalize else 0.5
    got = float(loss(LABELS, x, margin, normalize=normalize))
    assert got == pytest.approx(reference(LABELS, x, margin, normalize), rel=1e-4, abs=1e-5)
    assert got > 0


def test_batch_all_is_zero_when_every_triplet_is_satisfied():
    centres = {0: 0.0, 1: 10.0, 2: 20.0, 3: 30.0}
    x = np.array([[centres[label], 0.01 * i] for i, label in enumerate(LABELS)], dtype=np.float32)
    assert float(batch_all_triplet_loss(LABELS, x, 0.2)) == 0.0
    assert float(batch_hard_triplet_loss(LABELS, x, 0.2)) == 0.0


def test_per_strip_losses_are_averaged():
    x = embeddings((8, 3, 4), seed=3)
    each = [float(batch_all_triplet_loss(LABELS, x[:, s], 0.2)) for s in range(3)]
    assert float(batch_all_triplet_loss(LABELS, x, 0.2)) == pytest.approx(np.mean(each), rel=1e-5)


@pytest.mark.parametrize("cls", [BatchAllTripletLoss, BatchHardTripletLoss])
def test_loss_classes_serialize_and_run_in_graph_mode(cls):
    loss = cls(margin=0.3, normalize=True)
    clone = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(loss))
    assert type(clone) is cls and clone.margin == 0.3 and clone.normalize is True

    x = embeddings((8, 3, 4), seed=1)
    labels = LABELS.reshape(-1, 1)  # Keras passes (B, 1) labels as well as (B,)
    graph = tf.function(lambda y, e: clone(y, e), input_signature=[
        tf.TensorSpec([None, 1], tf.int64), tf.TensorSpec([None, 3, 4], tf.float32)])
    reference = numpy_batch_all if cls is BatchAllTripletLoss else numpy_batch_hard
    expected = reference(LABELS, x, 0.3, normalize=True)
    assert float(loss(labels, x)) == pytest.approx(expected, rel=1e-4)
    assert float(graph(labels, x)) == pytest.approx(expected, rel=1e-4)


@pytest.mark.parametrize(("loss", "reference"), CASES)
def test_gradients_are_finite_for_identical_embeddings(loss, reference):
    x = embeddings((8, 4), seed=2)
    x[1] = x[0]  # a zero distance: sqrt must not give NaN gradients
    variable = tf.Variable(x)
    with tf.GradientTape() as tape:
        value = loss(LABELS, variable, 0.2)
    gradient = tape.gradient(value, variable).numpy()
    assert np.all(np.isfinite(gradient)) and np.any(gradient != 0)
    assert float(value) == pytest.approx(reference(LABELS, x, 0.2), rel=1e-4, abs=1e-5)
