"""Zero-pad ONNX convolutions' channels so that ONNX Runtime's blocked kernel takes them (exact).

Why: ONNX Runtime's fast FP32 convolution on x86 is the blocked "NCHWc" kernel (blocks of 8
channels with AVX2). Its graph transformer takes a Conv whose input channels are below one
block (read straight from NCHW) or a whole number of blocks (it pads the *output* channels to
whole blocks by itself). Any other input count -- 50 stacked optical-flow channels, a layer
after one pruned to 29 filters -- falls back to the generic im2col + GEMM path, measured 2-3x
slower per FLOP on this repository's nets. That decides whether pruning cnn2d_bmvc by 40 %
gives 1.2x or 1.6x in ONNX Runtime.

Two exact rewrites bring such a Conv (the *consumer*) back onto the blocked kernel:

- when its input comes from another Conv (the *producer*) through channel-wise ops only
  (activations, pooling), the producer gets zero filters and the consumer zero weights for
  them. The extra channels are whatever the activations make of zeros, and the consumer
  multiplies them by zero. The blocked kernel pads output channels to whole blocks anyway, so
  the zero filters cost nothing there, and the graph stays in the blocked layout;
- otherwise (the model input, say) a ``Pad`` adds zero channels to the input. When that input
  is a channels-last tensor transposed to NCHW (the converter's ``Transpose`` after a Keras
  model's input), the zeros are added before the ``Transpose``, on the last axis: ONNX Runtime
  then folds the ``Transpose`` into the reorder to the blocked layout it makes anyway.

A Conv3D that will be computed as a Conv2D over ``kt`` stacked frames
(``gaitrun.export.conv3d_as_2d``, which runs after this) reads ``kt * C`` channels, so ``C`` is
padded until ``kt * C`` is a multiple of 8; its producer is padded, never its input.

Only FP32/FP16 graphs are padded: the INT8 ``QLinearConv`` kernels do not use the blocked
layout, and a padded activation would need the quantized zero point rather than 0.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .onnx_graph import (
    add_initializer,
    array,
    attrs,
    consumers,
    copied_nodes,
    drop_unused,
    producers,
    unique_name,
)

BLOCK = 8  # channels per NCHWc block with AVX2
# ops that act on each channel alone: a producer's zero channels pass through them to the consumer
CHANNELWISE = frozenset({"Relu", "LeakyRelu", "Clip", "Elu", "Selu", "Sigmoid", "Tanh", "HardSigmoid",
                         "HardSwish", "Softplus", "MaxPool", "AveragePool", "Identity"})


def candidates(proto: Any, multiple: int = BLOCK, conv3d_as_2d: bool = True) -> list[str]:
    """The names (:func:`conv_key`) of the Convs :func:`pad_conv_inputs` would pad, in graph order."""
    inits = {i.name: i for i in proto.graph.initializer}
    found = []
    for node in proto.graph.node:
        kernel = inits.get(node.input[1]) if node.op_type == "Conv" and len(node.input) > 1 else None
        if _padded_input_channels(node, kernel, multiple) is not None and (len(kernel.dims) == 4 or conv3d_as_2d):
            found.append(conv_key(node))
    return found


def conv_key(node: Any) -> str:
    """A Conv's name, or its output's when the node has none."""
    return node.name or node.output[0]


def pad_conv_inputs(proto: Any, multiple: int = BLOCK, conv3d_as_2d: bool = True,
                    only: set[str] | None = None) -> int:
    """Pad every eligible Conv of ``proto`` (an ``onnx.ModelProto``) in place (with ``only``: the
    eligible ones named there); return how many.

    Eligible: one group, a kernel stored as an initializer, and ``C_in`` (``kt * C_in`` for a
    Conv3D with temporal kernel ``kt``, only when ``conv3d_as_2d``) at least ``multiple`` but
    not a multiple of it.
    """
    graph = proto.graph
    nodes = copied_nodes(graph)
    inits = {i.name: i for i in graph.initializer}
    taken = set(inits) | {name for node in nodes for name in [*node.input, *node.output]}
    made_by = producers(nodes)
    readers = {name: len(users) for name, users in consumers(graph).items()}
    for output in graph.output:  # a graph output is read from outside
        readers[output.name] = readers.get(output.name, 0) + 1
    position_of = {id(node): position for position, node in enumerate(nodes)}
    padded: list[tuple[int, Any]] = []  # (position, Pad node) to insert
    stale, count = set(), 0
    for position, node in enumerate(nodes):
        kernel = inits.get(node.input[1]) if node.op_type == "Conv" and len(node.input) > 1 else None
        c_in = _padded_input_channels(node, kernel, multiple)
        if c_in is None or len(kernel.dims) == 5 and not conv3d_as_2d or only is not None and conv_key(node) not in only:
            continue
        chain = _producer_chain(node.input[0], made_by, readers, inits)
        if chain is not None:
            _pad_filters(chain[0], c_in, inits, graph, taken)
            stale.update(n.output[0] for n in chain)
        elif len(kernel.dims) == 4:
            extra = c_in - int(kernel.dims[1])
            transpose = _nhwc_transpose(node.input[0], made_by, readers)
            if transpose is not None:  # pad the channels-last tensor, before the Transpose
                pad = _pad_input(transpose, extra, inits, graph, taken, axis=3)
                padded.append((position_of[id(transpose)], pad))
                stale.add(transpose.output[0])
            else:
                padded.append((position, _pad_input(node, extra, inits, graph, taken)))
        else:
            continue  # a Conv3D's input is padded through its producer only
        node.input[1] = add_initializer(graph, inits, taken, f"{kernel.name}_cin{c_in}",
                                        _pad_axis(array(kernel), 1, c_in))
        count += 1
    for position, pad in sorted(padded, key=lambda item: item[0], reverse=True):
        nodes.insert(position, pad)
    if count:
        del graph.node[:]
        graph.node.extend(nodes)
        drop_unused(graph)  # the kernels and biases that were replaced
        _drop_value_info(graph, stale)
    return count


def _padded_input_channels(node: Any, kernel: Any, multiple: int) -> int | None:
    """``C_in`` rounded up so that the (frame-stacked) input channels fill whole blocks, or None."""
    if kernel is None or len(kernel.dims) not in (4, 5):
        return None
    if attrs(node).get("group", 1) != 1:
        return None
    c_in = int(kernel.dims[1])
    frames = int(kernel.dims[2]) if len(kernel.dims) == 5 else 1  # Conv2D over kt stacked frames
    if c_in * frames < multiple or (c_in * frames) % multiple == 0:
        return None
    step = multiple // math.gcd(frames, multiple)
    return -(-c_in // step) * step


def _producer_chain(tensor: str, producers: dict[str, Any], readers: dict[str, int],
                    inits: dict[str, Any]) -> list[Any] | None:
    """The nodes from a padable producer Conv to ``tensor`` through channel-wise ops, each output
    read once (by the next node), or None when ``tensor`` does not come from such a Conv."""
    chain = []
    while True:
        node = producers.get(tensor)
        if node is None or readers.get(tensor, 0) != 1 or len(node.output) != 1:
            return None
        chain.insert(0, node)
        if node.op_type == "Conv":
            kernel = inits.get(node.input[1]) if len(node.input) > 1 else None
            bias_ok = len(node.input) < 3 or node.input[2] in inits
            return chain if kernel is not None and bias_ok and attrs(node).get("group", 1) == 1 else None
        if node.op_type not in CHANNELWISE or len(node.input) > 1 and node.op_type != "Clip":
            return None
        tensor = node.input[0]


def _pad_filters(conv: Any, filters: int, inits: dict[str, Any], graph: Any, taken: set[str]) -> None:
    """Give ``conv`` zero filters (and zero biases) up to ``filters``."""
    for slot in (1, 2):  # kernel, bias
        if len(conv.input) > slot and conv.input[slot]:
            old = inits[conv.input[slot]]
            conv.input[slot] = add_initializer(graph, inits, taken, f"{old.name}_out{filters}",
                                               _pad_axis(array(old), 0, filters))


def _nhwc_transpose(tensor: str, producers: dict[str, Any], readers: dict[str, int]) -> Any | None:
    """The ``Transpose`` (perm 0, 3, 1, 2: NHWC to NCHW) that makes ``tensor`` and nothing else
    reads, or None."""
    node = producers.get(tensor)
    if node is None or node.op_type != "Transpose" or readers.get(tensor, 0) != 1:
        return None
    return node if list(attrs(node).get("perm", [])) == [0, 3, 1, 2] else None


def _pad_input(node: Any, extra: int, inits: dict[str, Any], graph: Any, taken: set[str],
               axis: int = 1) -> Any:
    """A ``Pad`` node that adds ``extra`` zeros on ``axis`` of ``node``'s first (4-D) input, which
    ``node`` now reads: the channels of a Conv's NCHW input, or (``axis=3``) of the NHWC input of
    the Transpose that feeds it."""
    from onnx import helper

    pads = np.zeros(8, np.int64)
    pads[4 + axis] = extra  # ONNX pads: all the starts, then all the ends
    pads_name = add_initializer(graph, inits, taken, f"{node.input[0]}_cin_pads", pads)
    padded = unique_name(f"{node.input[0]}_cin", taken)
    pad = helper.make_node("Pad", [node.input[0], pads_name], [padded], mode="constant",
                           name=unique_name(f"{node.name or padded}_pad", taken))
    node.input[0] = padded
    return pad


def _pad_axis(values: np.ndarray, axis: int, size: int) -> np.ndarray:
    widths = [(0, 0)] * values.ndim
    widths[axis] = (0, size - values.shape[axis])
    return np.pad(values, widths)


def _drop_value_info(graph: Any, names: set[str]) -> None:
    """Forget recorded shapes of tensors that gained channels."""
    drop = [n for n, v in enumerate(graph.value_info) if v.name in names]
    for index in reversed(drop):
        del graph.value_info[index]
