"""Acme's multi-layer perceptron on flattened inputs (a good plugin)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

INPUT_KIND = "image"
LOGITS = "scores"
EMBEDDING = None


class Params(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    units: int = Field(16, ge=1, description="hidden units")


def build(*, input_shape, num_classes, params: Params):
    import keras

    inputs = keras.Input(shape=input_shape, name="input")
    x = keras.layers.Flatten(name="flatten")(inputs)
    x = keras.layers.Dense(params.units, activation="relu", name="hidden")(x)
    return keras.Model(inputs, keras.layers.Dense(num_classes, activation="softmax", name="scores")(x))
