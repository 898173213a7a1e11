"""Embedded-Gait's 2D-CNN on optical-flow stacks (60x60x50): a classifier whose "code" is the embedding.

Input: (H, W, 2*frames) -- 25 optical-flow frames with their x/y channels stacked, 60x60 in
the reference. Layers, as in the reference table (valid padding, ReLU, L2 on conv kernels):
``conv1`` 96 7x7 -> ``pool1`` -> ``conv2`` 192 5x5 -> ``pool2`` -> ``conv3`` 512 3x3 -> ``pool3``
-> ``conv4`` 512 2x2 -> ``pool4`` (all max-pool 2) -> ``flatten`` -> ``fc1`` 2048 (linear) ->
``drop_fc1`` (0.4) -> ``embedding`` 1024 (linear; the reference's "code") -> ``fc2`` 1024 (ReLU) ->
``logits`` (softmax).

The model's output is the softmax (train it with cross-entropy); the k-NN features are the
output of the layer named ``embedding``. Full size with 150 classes (TUM-GAID's 150 training
subjects): 6,982,774 parameters, the reference's "about 7.0 M".
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from ._common import (
    check_valid_geometry,
    conv_block,
    dropout,
    max_pool,
    scaled,
    softmax_output,
    width_field,
)

INPUT_KIND = "stack2d"
LOGITS = "logits"  # the softmax output layer
EMBEDDING = "embedding"  # the layer whose output is the k-NN feature

FILTERS = (96, 192, 512, 512)
KERNELS = (7, 5, 3, 2)


class Params(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    dense_units: int = Field(2048, ge=1, description="units of the linear fc1 (before width scaling)")
    embedding_units: int = Field(1024, ge=1, description="units of the linear 'embedding' (code) layer")
    hidden_units: int = Field(1024, ge=1, description="units of fc2 between embedding and softmax")
    dropout: float = Field(0.4, ge=0, lt=1, description="dropout after fc1")
    l2: float = Field(5e-5, ge=0, description="L2 weight decay on the conv kernels")
    batch_norm: bool = Field(False, description="BatchNormalization after every convolution "
                                                "(not in the reference)")
    width: float = width_field()


def build(*, input_shape: tuple[int, ...], num_classes: int, params: Params) -> Any:
    """The 2D-CNN for stacks of shape ``input_shape`` (H, W, C); at least 46x46 pixels."""
    import keras

    check_valid_geometry("cnn2d_bmvc", input_shape[:2], [
        op for i, k in enumerate(KERNELS, start=1)
        for op in ((f"conv{i}", (k, k), (1, 1)), (f"pool{i}", (2, 2), (2, 2)))])
    inputs = keras.Input(shape=input_shape, name="input")
    x = inputs
    for i, (n, k) in enumerate(zip(FILTERS, KERNELS, strict=True), start=1):
        x = conv_block(x, i, rank=2, filters=scaled(n, params.width), kernel=k, padding="valid",
                       batch_norm=params.batch_norm, l2=params.l2)
        x = max_pool(x, i, rank=2, padding="valid")
    x = keras.layers.Flatten(name="flatten")(x)
    x = keras.layers.Dense(scaled(params.dense_units, params.width), name="fc1")(x)
    x = dropout(x, params.dropout, "drop_fc1")
    x = keras.layers.Dense(scaled(params.embedding_units, params.width), name="embedding")(x)
    x = keras.layers.Dense(scaled(params.hidden_units, params.width), activation="relu", name="fc2")(x)
    return keras.Model(inputs, softmax_output(x, num_classes), name="cnn2d_bmvc")
