"""Simple 2D CNN classifier: conv/pool/dropout blocks, dense layers, softmax (the gait-analysis seed).

Input: an image (H, W, C), any value range the data gives (the seed divides by 255). Block
``i`` is ``conv{i}`` (3x3, same padding) -> [``bn{i}``] -> ReLU ``act{i}`` -> ``pool{i}`` (max 2)
-> ``drop{i}``; then ``flatten``, ``fc1..`` and the softmax ``logits``.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from ._common import classifier_head, conv_pool_stack, scaled, width_field

INPUT_KIND = "image"
LOGITS = "logits"  # the softmax output layer
EMBEDDING = None  # a plain classifier


class Params(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    filters: tuple[int, ...] = Field((32, 64, 128), min_length=1,
                                     description="filters of each conv block (before width scaling)")
    kernel: int = Field(3, ge=1, description="square kernel size of every convolution")
    dense_units: tuple[int, ...] = Field((128,), description="units of the hidden dense layers")
    dropout: float = Field(0.25, ge=0, lt=1, description="dropout after every conv block")
    head_dropout: float = Field(0.5, ge=0, lt=1, description="dropout after every hidden dense layer")
    batch_norm: bool = Field(False, description="BatchNormalization after every convolution")
    l2: float = Field(0.0, ge=0, description="L2 weight decay on conv and dense kernels")
    width: float = width_field()


def build(*, input_shape: tuple[int, ...], num_classes: int, params: Params) -> Any:
    """The simple CNN for images of shape ``input_shape`` (H, W, C)."""
    import keras

    inputs = keras.Input(shape=input_shape, name="input")
    x = conv_pool_stack(inputs, params, rank=2)
    x = keras.layers.Flatten(name="flatten")(x)
    outputs = classifier_head(x, units=[scaled(u, params.width) for u in params.dense_units],
                              dropout_rate=params.head_dropout, num_classes=num_classes, l2=params.l2)
    return keras.Model(inputs, outputs, name="simple_cnn")
