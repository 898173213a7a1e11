"""Fold a convolution's per-channel scale and shift (an inference BatchNormalization) into its
weights and bias, in an ONNX graph (exact up to float rounding).

Why: Keras' exporter writes each BatchNormalization after a convolution as ``Mul`` by one
constant per channel, then ``Add`` of another: two passes over the activation, and in INT8 two
more requantisations (``QLinearMul``, ``QLinearAdd``). Worse, with ``conv3d_as_2d`` they stand
between the rewritten Conv2D and its ReLU, so the rewrite cannot keep the frame-major layout from
one convolution to the next and adds two Transposes per layer. On the main job's pruned INT8
cnn3d at batch 1 these took over a third of the time (ONNX Runtime's profiler).

``Conv(x, W, b)`` then ``* s`` then ``+ t`` (``s``, ``t`` float constants of shape ``(1, C, 1, ...)``
or ``(C, 1, ...)``, i.e. one value per channel) becomes ``Conv(x, W * s, b * s + t)``.
A link is folded only when the tensor between is read by the next node alone and is not a graph
output. Products are taken in float64 and stored as float32.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .onnx_graph import add_initializer, array, consumers, drop_unused


def fold_conv_scale_shift(proto: Any) -> int:
    """Fold every per-channel Mul/Add after a Conv of ``proto`` into it, in place; return how
    many Mul/Add nodes were folded."""
    graph = proto.graph
    inits = {i.name: i for i in graph.initializer}
    taken = set(inits) | {n for node in graph.node for n in (*node.input, *node.output)}
    outputs = {o.name for o in graph.output}
    readers_of = consumers(graph)  # stays right: a folded Conv takes over its reader's output name
    folded = 0
    for conv in [n for n in graph.node if n.op_type == "Conv"]:
        if conv.input[1] not in inits or (len(conv.input) > 2 and conv.input[2] not in inits):
            continue
        weight = array(inits[conv.input[1]]).astype(np.float64)
        channels = weight.shape[0]
        bias = array(inits[conv.input[2]]).astype(np.float64) if len(conv.input) > 2 else np.zeros(channels)
        changed = False
        for op in ("Mul", "Add"):
            readers = readers_of.get(conv.output[0], [])
            if conv.output[0] in outputs or len(readers) != 1 or readers[0].op_type != op:
                continue
            node = readers[0]
            values = _per_channel(node, conv.output[0], inits, channels, weight.ndim)
            if values is None:
                continue
            if op == "Mul":
                weight = weight * values.reshape(-1, *([1] * (weight.ndim - 1)))
                bias = bias * values
            else:
                bias = bias + values
            conv.output[0] = node.output[0]  # the Conv now makes what the Mul/Add made
            graph.node.remove(node)
            folded += 1
            changed = True
        if changed:
            name = conv.name or conv.output[0]
            conv.input[1] = add_initializer(graph, inits, taken, f"{name}/w_folded", weight.astype(np.float32))
            b = add_initializer(graph, inits, taken, f"{name}/b_folded", bias.astype(np.float32))
            if len(conv.input) > 2:
                conv.input[2] = b
            else:
                conv.input.append(b)
    if folded:
        drop_unused(graph)
    return folded


def _per_channel(node: Any, data: str, inits: dict[str, Any], channels: int, rank: int) -> np.ndarray | None:
    """The node's constant operand as one value per output channel, or None when it is not a
    float constant that broadcasts along the channel axis (axis 1) only."""
    other = [name for name in node.input if name != data]
    if len(other) != 1 or other[0] not in inits or list(node.input).count(data) != 1:
        return None
    const = array(inits[other[0]])
    if const.dtype != np.float32:
        return None
    shape = list(const.shape)
    while len(shape) < rank:  # numpy broadcasting aligns trailing axes
        shape.insert(0, 1)
    if len(shape) != rank or shape[1] != channels or any(s != 1 for i, s in enumerate(shape) if i != 1):
        return None
    return const.reshape(channels).astype(np.float64)
