"""GaitSet: a set of silhouettes -> per-strip embedding (62 x 256), trained with a triplet loss.

Input: (T, H, W, 1), a set of T silhouettes (64x44 in the reference). The model is built with
T = None, so any number of frames works at inference; the set is order-free.

* frame level (shared weights: ``frames`` folds the frames into the batch; same padding,
  LeakyReLU 0.01): ``set_conv1`` 32 5x5, ``set_conv2`` 32 3x3, ``set_pool1``, ``set_conv3`` 64,
  ``set_conv4`` 64, ``set_pool2``, ``set_conv5`` 128, ``set_conv6`` 128 (3x3);
* set pooling (``set_frames{i}`` unfolds, ``set_max{i}`` takes the max over frames) after
  ``set_pool1``, ``set_pool2`` and ``set_conv6`` feeds the global branch (multilayer global
  pipeline): ``gl_conv1`` 64, ``gl_conv2`` 64, ``gl_pool1``, ``gl_add1`` (+ set_max2),
  ``gl_conv3`` 128, ``gl_conv4`` 128, ``gl_add2`` (+ set_max3);
* horizontal pyramid mapping (``set_hpp``, ``gl_hpp``) with ``bins`` strips per scale
  (mean + max), concatenated into ``strips`` (2 x 31 = 62 at the default bins);
* ``embedding``: one FC per strip (``StripDense``, kernel (62, 128, 256), no bias), output
  (B, 62, 256): the model's output and the k-NN feature.

With ``ce_head`` the model has two outputs, a dict {"embedding": (B, S, D), "logits": softmax}
(``flatten`` -> ``logits``), for cross-entropy + triplet training. Full size: 2,595,424
parameters (GaitSet without conv biases: 2,594,592; reference "about 2.6 M").
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from ._common import conv_block, max_pool, scaled, softmax_output, width_field

INPUT_KIND = "frame_set"
LOGITS = "logits"  # the softmax output layer (built only with ce_head)
EMBEDDING = "embedding"  # the layer whose output is the k-NN feature


class Params(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    bins: tuple[int, ...] = Field((1, 2, 4, 8, 16), min_length=1,
                                  description="strips per pyramid scale; each must divide H/4")
    embedding_units: int = Field(256, ge=1, description="embedding size per strip (before width scaling)")
    ce_head: bool = Field(False, description="add a softmax 'logits' output for cross-entropy training")
    width: float = width_field()


def _conv(x: Any, index: int, filters: int, kernel: int, prefix: str, params: Params) -> Any:
    return conv_block(x, index, rank=2, filters=scaled(filters, params.width), kernel=kernel,
                      activation="leaky_relu", prefix=prefix)


def build(*, input_shape: tuple[int | None, ...], num_classes: int, params: Params) -> Any:
    """GaitSet for silhouette sets of shape ``input_shape`` (T, H, W, C); T is ignored (None)."""
    import keras

    from gaitrun.layers import (
        BatchToFrames,
        FramesToBatch,
        HorizontalPyramidPooling,
        SetMaxPooling,
        StripDense,
    )

    inputs = keras.Input(shape=(None, *input_shape[1:]), name="input")

    def set_max(x: Any, index: int) -> Any:
        frames = BatchToFrames(name=f"set_frames{index}")([x, inputs])
        return SetMaxPooling(name=f"set_max{index}")(frames)

    x = FramesToBatch(name="frames")(inputs)
    x = _conv(x, 1, 32, 5, "set_", params)
    x = _conv(x, 2, 32, 3, "set_", params)
    x = max_pool(x, 1, rank=2, prefix="set_")
    gl = _conv(set_max(x, 1), 1, 64, 3, "gl_", params)
    gl = _conv(gl, 2, 64, 3, "gl_", params)
    gl = max_pool(gl, 1, rank=2, prefix="gl_")
    x = _conv(x, 3, 64, 3, "set_", params)
    x = _conv(x, 4, 64, 3, "set_", params)
    x = max_pool(x, 2, rank=2, prefix="set_")
    gl = keras.layers.Add(name="gl_add1")([gl, set_max(x, 2)])
    gl = _conv(gl, 3, 128, 3, "gl_", params)
    gl = _conv(gl, 4, 128, 3, "gl_", params)
    x = _conv(x, 5, 128, 3, "set_", params)
    x = _conv(x, 6, 128, 3, "set_", params)
    x = set_max(x, 3)
    gl = keras.layers.Add(name="gl_add2")([gl, x])
    strips = keras.layers.Concatenate(axis=1, name="strips")([
        HorizontalPyramidPooling(params.bins, name="set_hpp")(x),
        HorizontalPyramidPooling(params.bins, name="gl_hpp")(gl)])
    embedding = StripDense(scaled(params.embedding_units, params.width), name="embedding")(strips)
    if not params.ce_head:
        return keras.Model(inputs, embedding, name="gaitset")
    logits = softmax_output(keras.layers.Flatten(name="flatten")(embedding), num_classes)
    return keras.Model(inputs, {"embedding": embedding, "logits": logits}, name="gaitset")
