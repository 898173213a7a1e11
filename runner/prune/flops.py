"""FLOPs of one sample: 2 x the multiply-accumulates of conv, dense, recurrent and strip layers.

Counted from each layer's output shape and kernel sizes: a convolution (also depthwise,
separable, or inside ``TimeDistributed``) or a ``Dense`` does ``kernel.size`` MACs per output
position (the output's axes between batch and channels), an LSTM/GRU/SimpleRNN does
``kernel.size + recurrent_kernel.size`` per time step, GaitSet's ``StripDense`` ``kernel.size``
in all. Biases, activations, pooling and normalisation are not counted.

Per-frame models that fold the frames into the batch (``FramesToBatch`` ... ``BatchToFrames``)
run their convolutions once per frame: their count is multiplied by the number of frames. An
unknown size (``None``: GaitSet's frame count) counts as ``frames``. Nested models (a transfer
backbone) are counted layer by layer.
"""

from __future__ import annotations

import math
from typing import Any

from .graph import functional_nodes


def count_flops(model: Any, *, frames: int = 1) -> int:
    """FLOPs of ``model`` for one sample; unknown sizes (``None``) count as ``frames``."""
    from gaitrun.layers import BatchToFrames, FramesToBatch

    per_sample: dict[str, int] = {}  # layer -> how many times it runs per sample (folded frames)
    total = 0
    for node in functional_nodes(model):
        name = node.config["name"]
        runs = max((per_sample.get(key[0], 1) for key, _ in node.inputs), default=1)
        if isinstance(node.layer, FramesToBatch):
            runs *= _size(node.inputs[0][1][1], frames)
        elif isinstance(node.layer, BatchToFrames):
            runs = per_sample.get(node.inputs[1][0][0], 1)
        per_sample[name] = runs
        total += runs * layer_macs(node.layer, frames=frames) * node.calls
    return 2 * total


def layer_macs(layer: Any, *, frames: int = 1) -> int:
    """Multiply-accumulates of one call of ``layer`` on one (batch) item."""
    import keras

    L = keras.layers
    if isinstance(layer, keras.Model):
        return count_flops(layer, frames=frames) // 2
    inner = layer.layer if isinstance(layer, L.TimeDistributed) else layer
    if isinstance(inner, (L.LSTM, L.GRU, L.SimpleRNN)):
        steps = _size(layer.input.shape[1], frames)
        return steps * (_size_of(inner.cell.kernel) + _size_of(inner.cell.recurrent_kernel))
    kernels = _kernels(inner)
    if not kernels:
        return 0
    if _is_strip_dense(inner):
        return kernels
    positions = math.prod(_size(d, frames) for d in _output_shape(layer)[1:-1])
    return positions * kernels


def _kernels(layer: Any) -> int:
    """The summed size of a conv/dense layer's kernels (0 for other layers)."""
    import keras

    L = keras.layers
    if isinstance(layer, (L.SeparableConv1D, L.SeparableConv2D)):
        return _size_of(layer.depthwise_kernel) + _size_of(layer.pointwise_kernel)
    counted = (L.Conv1D, L.Conv2D, L.Conv3D, L.DepthwiseConv1D, L.DepthwiseConv2D, L.Dense)
    if isinstance(layer, counted) or _is_strip_dense(layer):
        return _size_of(layer.kernel)
    return 0


def _is_strip_dense(layer: Any) -> bool:
    from gaitrun.layers import StripDense

    return isinstance(layer, StripDense)


def _output_shape(layer: Any) -> tuple[int | None, ...]:
    out = layer.output
    return tuple((out[0] if isinstance(out, (list, tuple)) else out).shape)


def _size_of(variable: Any) -> int:
    return math.prod(variable.shape)


def _size(dim: int | None, frames: int) -> int:
    return frames if dim is None else int(dim)
