"""Stacked LSTM classifier for inertial-sensor windows (e.g. UCI HAR: 128 steps x 9 channels).

Input: (steps, channels). ``lstm1 .. lstmN`` (all but the last return sequences), each followed
by ``drop_lstm{i}``, then ``fc1..`` and the softmax ``logits``.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from ._common import classifier_head, dropout, regularizer, scaled, width_field

INPUT_KIND = "inertial"
LOGITS = "logits"  # the softmax output layer
EMBEDDING = None  # a plain classifier


class Params(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    units: tuple[int, ...] = Field((64, 64), min_length=1, description="units of each stacked LSTM")
    dense_units: tuple[int, ...] = Field((32,), description="units of the hidden dense layers")
    dropout: float = Field(0.2, ge=0, lt=1, description="dropout after every LSTM and dense layer")
    l2: float = Field(0.0, ge=0, description="L2 weight decay on LSTM and dense kernels")
    width: float = width_field()


def build(*, input_shape: tuple[int, ...], num_classes: int, params: Params) -> Any:
    """The stacked LSTM for windows of shape ``input_shape`` (steps, channels)."""
    import keras

    inputs = keras.Input(shape=input_shape, name="input")
    x = inputs
    last = len(params.units)
    for i, n in enumerate(params.units, start=1):
        x = keras.layers.LSTM(scaled(n, params.width), return_sequences=i < last,
                              kernel_regularizer=regularizer(params.l2), name=f"lstm{i}")(x)
        x = dropout(x, params.dropout, f"drop_lstm{i}")
    outputs = classifier_head(x, units=[scaled(u, params.width) for u in params.dense_units],
                              dropout_rate=params.dropout, num_classes=num_classes, l2=params.l2)
    return keras.Model(inputs, outputs, name="har_lstm")
