"""Embedded-Gait's 3D-CNN on optical-flow clips (25x60x60x2): a classifier whose "code" is the embedding.

Input: (frames, H, W, 2) -- x/y optical flow, 25x60x60 in the reference. Layers, as in the
reference table (valid padding, ReLU):

=========  =======  ===========  =========
layer      filters  kernel t,h,w  strides
=========  =======  ===========  =========
conv1      64       3x5x5        1,2,2
conv2      128      3x3x3        1,2,2
conv3      256      3x3x3        2,2,2
conv4      512      3x3x3        2,2,2
conv5      512      3x2x2        1
conv6      512      2x1x1        1
embedding  1024     1x1x1        1  (linear, L2 1e-3: the reference's "code")
=========  =======  ===========  =========

then ``flatten`` -> [``drop_fc0``] -> ``fc1`` 1024 (ReLU) -> ``logits`` (softmax). The model's
output is the softmax (train it with cross-entropy); the k-NN features are the output of the
``embedding`` Conv3D, shape (1, 1, 1, 1024) at the reference input size (flatten it). Full
size with 150 classes (TUM-GAID's 150 training subjects): 10,055,126 parameters (reference:
"about 10 M").
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from ._common import (
    check_valid_geometry,
    classifier_head,
    conv_block,
    dropout,
    regularizer,
    scaled,
    width_field,
)

INPUT_KIND = "clip3d"
LOGITS = "logits"  # the softmax output layer
EMBEDDING = "embedding"  # the layer whose output is the k-NN feature

# (filters, kernel (t, h, w), strides (t, h, w)) of conv1..conv6
CONVS = (
    (64, (3, 5, 5), (1, 2, 2)),
    (128, (3, 3, 3), (1, 2, 2)),
    (256, (3, 3, 3), (2, 2, 2)),
    (512, (3, 3, 3), (2, 2, 2)),
    (512, (3, 2, 2), (1, 1, 1)),
    (512, (2, 1, 1), (1, 1, 1)),
)


class Params(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    embedding_units: int = Field(1024, ge=1, description="filters of the linear 1x1x1 'embedding' conv")
    dense_units: int = Field(1024, ge=1, description="units of fc1 before the softmax")
    l2: float = Field(1e-3, ge=0, description="L2 weight decay on the embedding conv kernel")
    conv_l2: float = Field(0.0, ge=0, description="L2 weight decay on conv1..conv6 (none in the reference)")
    dropout: float = Field(0.0, ge=0, lt=1, description="dropout after the flattened embedding "
                                                        "(none in the reference)")
    batch_norm: bool = Field(False, description="BatchNormalization after conv1..conv6 "
                                                "(not in the reference)")
    width: float = width_field()


def build(*, input_shape: tuple[int, ...], num_classes: int, params: Params) -> Any:
    """The 3D-CNN for clips of shape ``input_shape`` (T, H, W, C); at least 23x49x49 (t, h, w)."""
    import keras

    check_valid_geometry("cnn3d", input_shape[:3],
                         [(f"conv{i}", k, s) for i, (_, k, s) in enumerate(CONVS, start=1)])
    inputs = keras.Input(shape=input_shape, name="input")
    x = inputs
    for i, (n, kernel, strides) in enumerate(CONVS, start=1):
        x = conv_block(x, i, rank=3, filters=scaled(n, params.width), kernel=kernel, strides=strides,
                       padding="valid", batch_norm=params.batch_norm, l2=params.conv_l2)
    x = keras.layers.Conv3D(scaled(params.embedding_units, params.width), 1,
                            kernel_regularizer=regularizer(params.l2), name="embedding")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    x = dropout(x, params.dropout, "drop_fc0")
    outputs = classifier_head(x, units=[scaled(params.dense_units, params.width)], dropout_rate=0.0,
                              num_classes=num_classes)
    return keras.Model(inputs, outputs, name="cnn3d")
