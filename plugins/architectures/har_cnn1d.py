"""1D CNN classifier for inertial-sensor windows (e.g. UCI HAR: 128 steps x 9 channels).

Input: (steps, channels). Block ``i`` is ``conv{i}`` (Conv1D, same padding) -> [``bn{i}``] ->
ReLU ``act{i}`` -> ``pool{i}`` (max 2) -> ``drop{i}``; then ``gap`` (global average pooling over
time), ``fc1..`` and the softmax ``logits``.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from ._common import classifier_head, conv_pool_stack, scaled, width_field

INPUT_KIND = "inertial"
LOGITS = "logits"  # the softmax output layer
EMBEDDING = None  # a plain classifier


class Params(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    filters: tuple[int, ...] = Field((64, 128, 128), min_length=1,
                                     description="filters of each Conv1D block")
    kernel: int = Field(5, ge=1, description="kernel size (time steps) of every convolution")
    batch_norm: bool = Field(True, description="BatchNormalization after every convolution")
    dense_units: tuple[int, ...] = Field((100,), description="units of the hidden dense layers")
    dropout: float = Field(0.1, ge=0, lt=1, description="dropout after every conv block")
    head_dropout: float = Field(0.5, ge=0, lt=1, description="dropout after every hidden dense layer")
    l2: float = Field(0.0, ge=0, description="L2 weight decay on conv and dense kernels")
    width: float = width_field()


def build(*, input_shape: tuple[int, ...], num_classes: int, params: Params) -> Any:
    """The 1D CNN for windows of shape ``input_shape`` (steps, channels)."""
    import keras

    inputs = keras.Input(shape=input_shape, name="input")
    x = conv_pool_stack(inputs, params, rank=1)
    x = keras.layers.GlobalAveragePooling1D(name="gap")(x)
    outputs = classifier_head(x, units=[scaled(u, params.width) for u in params.dense_units],
                              dropout_rate=params.head_dropout, num_classes=num_classes, l2=params.l2)
    return keras.Model(inputs, outputs, name="har_cnn1d")
