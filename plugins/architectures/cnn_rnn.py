"""Per-frame CNN with shared weights + LSTM/GRU classifier for frame sequences (the video seed).

Input: (T, H, W, C) frames. Every frame goes through the same CNN: ``frames`` folds the frames
into the batch, then blocks ``conv{i}`` -> [``bn{i}``] -> ReLU ``act{i}`` -> ``pool{i}`` and
``frame_pool`` (global average pooling) -> [``frame_bn``]; ``sequence`` unfolds the
(B, T, features) sequence that feeds ``rnn`` (LSTM or GRU), then ``drop_rnn``, ``fc1..`` and
the softmax ``logits``.

``frame_bn`` (with ``batch_norm``) standardises the pooled frame features across the batch:
the averages of silhouettes of different people differ by a few percent, and without it the
RNN gets almost the same input for everyone (on the synthetic gait data: no progress in 100
steps without it, 0.44 training accuracy with it).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from ._common import BN_MOMENTUM, classifier_head, conv_block, dropout, max_pool, scaled, width_field

INPUT_KIND = "sequence"
LOGITS = "logits"  # the softmax output layer
EMBEDDING = None  # a plain classifier


class Params(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    filters: tuple[int, ...] = Field((32, 64, 128), min_length=1,
                                     description="filters of each per-frame conv block")
    kernel: int = Field(3, ge=1, description="square kernel size of every convolution")
    batch_norm: bool = Field(True, description="BatchNormalization after every convolution")
    rnn: Literal["lstm", "gru"] = Field("lstm", description="recurrent layer over the frame features")
    rnn_units: int = Field(128, ge=1, description="units of the recurrent layer")
    dense_units: tuple[int, ...] = Field((64,), description="units of the hidden dense layers")
    dropout: float = Field(0.3, ge=0, lt=1, description="dropout after the RNN and every dense layer")
    l2: float = Field(0.0, ge=0, description="L2 weight decay on conv and dense kernels")
    width: float = width_field()


def build(*, input_shape: tuple[int | None, ...], num_classes: int, params: Params) -> Any:
    """The CNN+RNN for frame sequences of shape ``input_shape`` (T, H, W, C)."""
    import keras

    from gaitrun.layers import BatchToFrames, FramesToBatch

    inputs = keras.Input(shape=input_shape, name="input")
    x = FramesToBatch(name="frames")(inputs)
    for i, n in enumerate(params.filters, start=1):
        x = conv_block(x, i, rank=2, filters=scaled(n, params.width), kernel=params.kernel,
                       batch_norm=params.batch_norm, l2=params.l2)
        x = max_pool(x, i, rank=2)
    x = keras.layers.GlobalAveragePooling2D(name="frame_pool")(x)
    if params.batch_norm:  # pooled features differ little between people: standardise them
        x = keras.layers.BatchNormalization(momentum=BN_MOMENTUM, name="frame_bn")(x)
    x = BatchToFrames(name="sequence")([x, inputs])
    rnn_cls = {"lstm": keras.layers.LSTM, "gru": keras.layers.GRU}[params.rnn]
    x = rnn_cls(scaled(params.rnn_units, params.width), name="rnn")(x)
    x = dropout(x, params.dropout, "drop_rnn")
    outputs = classifier_head(x, units=[scaled(u, params.width) for u in params.dense_units],
                              dropout_rate=params.dropout, num_classes=num_classes, l2=params.l2)
    return keras.Model(inputs, outputs, name="cnn_rnn")
