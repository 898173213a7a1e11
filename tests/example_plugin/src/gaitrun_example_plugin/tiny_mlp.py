"""A tiny multi-layer perceptron on flattened images (example third-party plugin)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

INPUT_KIND = "image"
LOGITS = "predictions"  # the softmax layer: the core finds it by this declaration
EMBEDDING = None  # no embedding layer: a plain classifier


class Params(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    units: int = Field(32, ge=1, le=4096, description="hidden units")
    width: float = Field(1.0, gt=0, description="multiplier on units")


def build(*, input_shape, num_classes, params: Params):
    import keras

    inputs = keras.Input(shape=input_shape, name="input")
    x = keras.layers.Flatten(name="flatten")(inputs)
    x = keras.layers.Dense(max(1, round(params.units * params.width)), activation="relu", name="fc1")(x)
    outputs = keras.layers.Dense(num_classes, activation="softmax", name="predictions")(x)
    return keras.Model(inputs, outputs, name="tiny_mlp")
