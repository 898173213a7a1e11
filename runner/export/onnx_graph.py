"""Small helpers shared by the ONNX graph rewrites (``conv3d_as_2d``, ``pad_channels``, ``fold_linear``)."""

from __future__ import annotations

from typing import Any

import numpy as np


def consumers(graph: Any) -> dict[str, list[Any]]:
    """The nodes that read each tensor."""
    found: dict[str, list[Any]] = {}
    for node in graph.node:
        for name in node.input:
            found.setdefault(name, []).append(node)
    return found


def producers(nodes: Any) -> dict[str, Any]:
    """The node that makes each tensor, among ``nodes``."""
    return {name: node for node in nodes for name in node.output}


def attrs(node: Any) -> dict[str, Any]:
    """A node's attributes as plain values."""
    import onnx

    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def copied_nodes(graph: Any) -> list[Any]:
    """Copies of the graph's nodes: a rewrite edits them, then replaces ``graph.node`` with them
    (the originals go when that field is cleared)."""
    import onnx

    nodes = []
    for original in graph.node:
        nodes.append(onnx.NodeProto())
        nodes[-1].CopyFrom(original)
    return nodes


def drop_unused(graph: Any) -> None:
    """Remove nodes whose outputs nothing reads any more, then initializers nothing reads, then
    the recorded shapes (``value_info``) of tensors no node makes any more."""
    outputs = {o.name for o in graph.output}
    while True:
        used = {name for node in graph.node for name in node.input} | outputs
        dead = [n for n in graph.node if not any(o in used for o in n.output)]
        if not dead:
            break
        for n in dead:
            graph.node.remove(n)
    used = {name for node in graph.node for name in node.input}
    for init in [i for i in graph.initializer if i.name not in used]:
        graph.initializer.remove(init)
    made = {name for node in graph.node for name in node.output}
    for index in reversed([n for n, v in enumerate(graph.value_info) if v.name not in made]):
        del graph.value_info[index]


def array(initializer: Any) -> np.ndarray:
    """An initializer's values."""
    from onnx import numpy_helper

    return numpy_helper.to_array(initializer)


def unique_name(name: str, taken: set[str]) -> str:
    """``name``, or ``name_1``, ``name_2``... whichever is not in ``taken`` (then added to it)."""
    candidate, n = name, 1
    while candidate in taken:
        candidate, n = f"{name}_{n}", n + 1
    taken.add(candidate)
    return candidate


def add_initializer(graph: Any, inits: dict[str, Any], taken: set[str], name: str, values: np.ndarray) -> str:
    """Add ``values`` to ``graph`` (and ``inits``) under a fresh name based on ``name``; return it."""
    from onnx import numpy_helper

    name = unique_name(name, taken)
    graph.initializer.append(numpy_helper.from_array(values, name))
    inits[name] = graph.initializer[-1]
    return name
