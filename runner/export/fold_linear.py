"""Fold chains of linear layers in an ONNX graph into one matrix (exact up to float rounding).

Why: a net may stack fully connected layers with no activation between them. cnn2d_bmvc's head
is ``fc1`` (linear) -> dropout -> ``embedding`` (linear) -> ``fc2`` (ReLU), as in the reference.
At inference the dropout is gone, so the three matrices (512x2048, 2048x1024, 1024x1024: 16 MB
of weights read for every sample) multiply into one 512x1024 matrix (2 MB). At batch 1 that
head is memory-bound: in ONNX Runtime it took ~0.55 ms of cnn2d_bmvc's ~14.8 ms, the same in
the unpruned and the pruned model, since pruning removes conv filters only. Folding it is
what a deployment wants anyway, and it lets the measured pruning speed-up show what pruning
does to the convolutions.

One link of a chain is ``MatMul(x, W1)``, optionally ``+ b1``, then ``MatMul(., W2)``: it
becomes ``MatMul(x, W1 @ W2)``, plus ``b1 @ W2`` (added to the second layer's bias, or as a new
``Add``), since ``(x W1 + b1) W2 = x (W1 W2) + b1 W2``. A link is folded only when

- ``W1``, ``W2`` (2-D) and ``b1`` (1-D) are float32 initializers,
- the tensor between the two layers is read by the second layer alone and is not a graph
  output (a model that outputs its embedding keeps it), and
- the folded matrix costs fewer multiply-adds per row than the two it replaces
  (``K * N2 < K * N1 + N1 * N2``; a bottleneck that widens again is kept).

Products are taken in float64 and stored as float32: outputs differ from the unfolded graph's
by float rounding (~1e-7 relative on this repository's nets).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np

from .onnx_graph import add_initializer, array, copied_nodes, drop_unused, producers, unique_name


def fold_linear_chains(proto: Any) -> int:
    """Fold every foldable link of ``proto`` (an ``onnx.ModelProto``) in place; return how many."""
    graph = proto.graph
    nodes = copied_nodes(graph)
    inits = {i.name: i for i in graph.initializer}
    taken = set(inits) | {name for node in nodes for name in [*node.input, *node.output]}
    count = 0
    while _fold_one(nodes, graph, inits, taken):
        count += 1
    if count:
        del graph.node[:]
        graph.node.extend(nodes)
        drop_unused(graph)  # the replaced matrices and biases, and the removed layers' shapes
    return count


def _fold_one(nodes: list[Any], graph: Any, inits: dict[str, Any], taken: set[str]) -> bool:
    """Fold the first foldable link of ``nodes`` (edited in place); False when there is none."""
    made_by = producers(nodes)
    readers = Counter(name for node in nodes for name in node.input)
    readers.update(o.name for o in graph.output)  # a graph output is read from outside
    for position, second in enumerate(nodes):
        w2 = _matrix(second, inits)
        link = _linear_producer(second.input[0], made_by, readers, inits) if w2 is not None else None
        if link is None:
            continue
        first, bias_add, w1, b1 = link
        (k, n1), n2 = w1.shape, w2.shape[1]
        if n1 != w2.shape[0] or k * n2 >= k * n1 + n1 * n2:
            continue
        w2_64 = w2.astype(np.float64)
        second.input[0] = first.input[0]
        second.input[1] = add_initializer(graph, inits, taken, f"{second.input[1]}_folded",
                                          (w1.astype(np.float64) @ w2_64).astype(np.float32))
        if b1 is not None:
            _add_bias(nodes, position, b1.astype(np.float64) @ w2_64, readers, graph, inits, taken)
        nodes[:] = [n for n in nodes if n is not first and n is not bias_add]
        return True
    return False


def _matrix(node: Any, inits: dict[str, Any]) -> np.ndarray | None:
    """The constant 2-D float32 right operand of a ``MatMul``, or None."""
    from onnx import TensorProto

    if node.op_type != "MatMul" or len(node.input) != 2:
        return None
    init = inits.get(node.input[1])
    if init is None or len(init.dims) != 2 or init.data_type != TensorProto.FLOAT:
        return None
    return array(init)


def _bias(node: Any, inits: dict[str, Any]) -> tuple[str, np.ndarray] | None:
    """For an ``Add`` of a tensor and a constant 1-D float32 vector: (the tensor, the vector)."""
    from onnx import TensorProto

    if node.op_type != "Add" or len(node.input) != 2:
        return None
    for const, other in ((1, 0), (0, 1)):
        init = inits.get(node.input[const])
        if init is not None and node.input[other] not in inits:
            if len(init.dims) == 1 and init.data_type == TensorProto.FLOAT:
                return node.input[other], array(init)
            return None
    return None


def _linear_producer(tensor: str, producers: dict[str, Any], readers: Counter,
                     inits: dict[str, Any]) -> tuple[Any, Any, np.ndarray, np.ndarray | None] | None:
    """When ``tensor`` is ``MatMul(x, W1)`` or ``MatMul(x, W1) + b1``, read only once: (the MatMul,
    the bias Add or None, W1, b1 or None); else None."""
    node = producers.get(tensor)
    if node is None or readers[tensor] != 1:
        return None
    bias = _bias(node, inits)
    if bias is None:
        w1 = _matrix(node, inits)
        return None if w1 is None else (node, None, w1, None)
    inner, b1 = bias
    matmul = producers.get(inner)
    w1 = _matrix(matmul, inits) if matmul is not None and readers[inner] == 1 else None
    if w1 is None or b1.shape != (w1.shape[1],):
        return None
    return matmul, node, w1, b1


def _add_bias(nodes: list[Any], position: int, shift: np.ndarray, readers: Counter,
              graph: Any, inits: dict[str, Any], taken: set[str]) -> None:
    """Add ``shift`` to the output of ``nodes[position]`` (a MatMul): into the bias of the ``Add``
    that alone reads it, else with a new ``Add`` right after it."""
    from onnx import helper

    matmul = nodes[position]
    out = matmul.output[0]
    if readers[out] == 1:
        for node in nodes[position + 1:]:
            bias = _bias(node, inits) if out in node.input else None
            if bias is not None and bias[1].shape == shift.shape:
                slot = 1 - list(node.input).index(out)
                node.input[slot] = add_initializer(graph, inits, taken, f"{node.input[slot]}_folded",
                                                   (bias[1].astype(np.float64) + shift).astype(np.float32))
                return
    raw = unique_name(f"{out}_unbiased", taken)
    bias_name = add_initializer(graph, inits, taken, f"{out}_folded_bias", shift.astype(np.float32))
    matmul.output[0] = raw
    nodes.insert(position + 1, helper.make_node("Add", [raw, bias_name], [out],
                                                name=unique_name(f"{matmul.name or out}_bias", taken)))
