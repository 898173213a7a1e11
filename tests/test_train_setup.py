"""Recipe ``train:`` settings become the Keras loss and model that train (``gaitrun.train.setup``)."""

from __future__ import annotations

import numpy as np

from gaitrun.outputs import Outputs
from gaitrun.recipe.sections import Loss
from gaitrun.train.setup import training_model


def _classifier():
    import keras

    inputs = keras.Input(shape=(4,))
    emb = keras.layers.Dense(3, name="code")(inputs)
    return keras.Model(inputs, keras.layers.Dense(3, activation="softmax", name="probs")(emb))


def test_label_smoothing_is_used_by_the_training_loss():
    model = _classifier()
    y, probs = np.array([0, 1]), np.array([[0.98, 0.01, 0.01], [0.01, 0.98, 0.01]], "float32")
    _, plain, _ = training_model(model, Loss(), Outputs("probs", None))
    _, smooth, _ = training_model(model, Loss(label_smoothing=0.3), Outputs("probs", None))
    ce = -np.log(0.98)
    # target (1 - 0.3) * onehot + 0.3 / 3: 0.8 on the class, 0.1 on each other one
    expected = -(0.8 * np.log(0.98) + 2 * 0.1 * np.log(0.01))
    assert abs(float(plain(y, probs)) - ce) < 1e-5
    assert abs(float(smooth(y, probs)) - expected) < 1e-4


def test_the_declared_output_names_are_the_ones_trained():
    model = _classifier()
    both, losses, label_of = training_model(model, Loss(name="ce_triplet"), Outputs("probs", "code"))
    assert [t.name for t in both.outputs] == [model.get_layer("code").output.name, model.get_layer("probs").output.name]
    assert len(losses) == 2 and label_of(1) == (1, 1)
