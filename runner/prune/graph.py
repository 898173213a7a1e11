"""Where the channels of every conv filter go in a functional Keras model.

The pruner may remove output channels (filters) of a convolution only if it can follow those
channels to every layer that consumes them and slice that layer's weights. This module walks
the model's functional graph (its ``get_config()``: layers in topological order with their
inbound tensors) and describes the last axis of every tensor as a :class:`Layout`: a sequence
of segments, each either the filters of one convolution or channels that stay as they are.

* ``Conv1D/2D/3D`` (also inside ``TimeDistributed``) start a new segment (its own filters) and
  consume their input's channels (kernel axis -2);
* channel-preserving layers (pooling, activations, dropout, padding, ``BatchNormalization`` --
  whose weights are per channel --, GaitSet's set pooling / strips, frame folding) pass the
  layout on;
* ``Concatenate`` on the last axis joins the segments (offsets); element-wise merges (``Add``
  ...) and ``Concatenate`` on another axis need the same channels on every input, so the
  convolutions feeding them form a *group* that keeps one common set of filters;
* ``Flatten`` repeats the layout once per spatial position (channels-last order:
  position = spatial_index * C + c);
* ``Dense``, ``LSTM``/``GRU``/``SimpleRNN`` and ``StripDense`` consume their input channels
  (rows of the kernel; ``StripDense``'s kernel axis 1).

Channels reaching anything else (an unknown layer, the model output, a shared layer) cannot be
removed: their convolutions are *skipped*, with the reason.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .layers import classify, conv_filters

# (layer name, node index, tensor index): one tensor of the functional graph
TensorKey = tuple[str, int, int]
# (source convolution or None for channels that are never removed, number of channels)
Segment = tuple[str | None, int]


@dataclass(frozen=True)
class Layout:
    """The last axis of a tensor: segments in order, repeated ``repeat`` times (after Flatten)."""

    segments: tuple[Segment, ...]
    repeat: int = 1

    @property
    def sources(self) -> set[str]:
        return {src for src, _ in self.segments if src is not None}

    @property
    def width(self) -> int:
        return sum(n for _, n in self.segments)

    def kept_positions(self, keep: dict[str, np.ndarray]) -> np.ndarray | None:
        """Indices of the surviving positions along the axis, or ``None`` if nothing is removed."""
        if not self.sources & keep.keys():
            return None
        parts, offset = [], 0
        for src, n in self.segments:
            parts.append(offset + (keep[src] if src in keep else np.arange(n)))
            offset += n
        kept = np.concatenate(parts)
        return (np.arange(self.repeat)[:, None] * offset + kept[None, :]).ravel()


def fixed(width: int) -> Layout:
    """A layout whose channels are never removed."""
    return Layout(((None, int(width)),))


@dataclass(frozen=True)
class Node:
    """A layer of the functional graph with the tensors it is called on."""

    layer: Any
    config: dict[str, Any]
    inputs: tuple[tuple[TensorKey, tuple[int | None, ...]], ...]  # (key, shape) in call order
    calls: int  # how many times the model calls the layer (> 1: a shared layer)


def functional_nodes(model: Any) -> Iterator[Node]:
    """The model's layers in topological order with their inbound tensors."""
    config = model.get_config()
    if "layers" not in config or "output_layers" not in config:
        raise ValueError(f"model {model.name!r} is not a functional Keras model; build it with "
                         "keras.Model(inputs, outputs) to prune it")
    for entry in config["layers"]:
        refs = tuple(ref for node in entry["inbound_nodes"] for ref in _tensor_refs(node))
        yield Node(model.get_layer(entry["name"]), entry, refs, len(entry["inbound_nodes"]))


def output_keys(model: Any) -> list[TensorKey]:
    """The tensors that are model outputs."""
    return [tuple(k) for k in _history_lists(model.get_config()["output_layers"])]


def _tensor_refs(value: Any) -> Iterator[tuple[TensorKey, tuple[int | None, ...]]]:
    """Every ``__keras_tensor__`` inside a serialized inbound node, in order."""
    if isinstance(value, dict):
        if value.get("class_name") == "__keras_tensor__":
            cfg = value["config"]
            yield tuple(cfg["keras_history"]), tuple(cfg["shape"])
            return
        for v in value.values():
            yield from _tensor_refs(v)
    elif isinstance(value, (list, tuple)):
        for v in value:
            yield from _tensor_refs(v)


def _history_lists(value: Any) -> Iterator[list[Any]]:
    """The ``[layer, node, tensor]`` triples inside ``output_layers`` (a list, dict or triple)."""
    if isinstance(value, (list, tuple)) and len(value) == 3 and isinstance(value[0], str):
        yield list(value)
    elif isinstance(value, dict):
        for v in value.values():
            yield from _history_lists(v)
    elif isinstance(value, (list, tuple)):
        for v in value:
            yield from _history_lists(v)


@dataclass
class ChannelGraph:
    """What the pruner may remove and what it must slice.

    ``convs``: every prunable convolution -> its filter count. ``groups``: tuples of convs that
    must keep the same filters (each prunable conv is in exactly one group; most groups have one
    member). ``skipped``: convolutions that are never pruned -> why. ``slices``: layer -> (its
    input layout, {weight index: axis}) for every layer whose weights follow its input channels.
    """

    convs: dict[str, int] = field(default_factory=dict)
    groups: list[tuple[str, ...]] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    slices: dict[str, tuple[Layout, dict[int, int]]] = field(default_factory=dict)


def analyse(model: Any, *, protected: Mapping[str, str] | Iterable[str] = ()) -> ChannelGraph:
    """Follow every conv filter through ``model``; convs named in ``protected`` keep all filters
    (a mapping gives the reason recorded in ``skipped``; plain names are "excluded")."""
    walk = _Walk(dict(protected) if isinstance(protected, Mapping) else dict.fromkeys(protected, "excluded"))
    for node in functional_nodes(model):
        walk.visit(node)
    for key in output_keys(model):
        walk.block(walk.layout(key, None), "its channels reach the model output")
    return walk.result()


class _Walk:
    """The state of one walk over the graph: layouts of tensors, groups, blocked convs."""

    def __init__(self, protected: dict[str, str]):
        self.protected = protected
        self.graph = ChannelGraph()
        self.layouts: dict[TensorKey, Layout] = {}
        self.parent: dict[str, str] = {}  # union-find over convs joined by merges
        self.blocked: dict[str, str] = {}

    def layout(self, key: TensorKey, shape: tuple[int | None, ...] | None) -> Layout:
        if key in self.layouts:
            return self.layouts[key]
        return fixed(shape[-1] if shape and shape[-1] is not None else 0)

    def block(self, layout: Layout, reason: str) -> None:
        for src in layout.sources:
            self.blocked.setdefault(src, reason)

    def visit(self, node: Node) -> None:
        """Record the layout of the layer's output (none stored: channels that stay)."""
        if not node.inputs:  # an InputLayer
            return
        inputs = [self.layout(key, shape) for key, shape in node.inputs]
        name = node.config["name"]
        kind, arg = classify(node)
        if kind == "unknown":
            for lay in inputs:
                self.block(lay, f"its channels feed '{name}' ({arg}), which the pruner cannot slice")
            return
        out = getattr(self, f"_{kind}")(node, inputs, arg)
        if out is not None:
            self.layouts[(name, 0, 0)] = out

    def _conv(self, node: Node, inputs: list[Layout], axes: dict[int, int]) -> Layout | None:
        name, filters = node.config["name"], conv_filters(node.layer)
        self._consume(name, inputs[0], axes)
        if name in self.protected:
            self.graph.skipped[name] = self.protected[name]
            return None
        self.graph.convs[name] = filters
        self.parent[name] = name
        return Layout(((name, filters),))

    def _consume(self, name: str, layout: Layout, axes: dict[int, int]) -> Layout:
        if layout.sources:
            self.graph.slices[name] = (layout, axes)
        return layout

    def _dense(self, node: Node, inputs: list[Layout], axes: dict[int, int]) -> None:
        self._consume(node.config["name"], inputs[0], axes)

    def _preserve(self, node: Node, inputs: list[Layout], axes: dict[int, int]) -> Layout:
        """Channel-wise layers; inputs after the first only lend their shape (e.g. frame count)."""
        for extra in inputs[1:]:
            self.block(extra, f"its channels feed '{node.config['name']}' as a secondary input")
        return self._consume(node.config["name"], inputs[0], axes)

    def _flatten(self, node: Node, inputs: list[Layout], skip_axes: int) -> Layout | None:
        """``skip_axes``: leading axes kept apart from the batch (1 inside ``TimeDistributed``)."""
        spatial = node.inputs[0][1][1 + skip_axes:-1]
        if not inputs[0].sources or inputs[0].repeat > 1 or not spatial:
            return inputs[0]
        if any(s is None for s in spatial):
            self.block(inputs[0], f"'{node.config['name']}' flattens a tensor of unknown size")
            return None
        return Layout(inputs[0].segments, repeat=math.prod(spatial))

    def _concat(self, node: Node, inputs: list[Layout], _: Any) -> Layout | None:
        """Channels side by side: the segments follow each other (offsets)."""
        if any(lay.repeat > 1 or lay.width == 0 for lay in inputs):  # 0: unknown channel count
            for lay in inputs:
                self.block(lay, f"'{node.config['name']}' concatenates flattened or unsized tensors")
            return None
        return Layout(tuple(seg for lay in inputs for seg in lay.segments))

    def _merge(self, node: Node, inputs: list[Layout], _: Any) -> Layout | None:
        """Inputs combined channel by channel: their convolutions must keep the same filters."""
        first = inputs[0]
        same = all(lay.repeat == first.repeat and [n for _, n in lay.segments] ==
                   [n for _, n in first.segments] for lay in inputs)
        if not same:
            for lay in inputs:
                self.block(lay, f"'{node.config['name']}' combines inputs whose channels do not line up")
            return None
        for segs in zip(*(lay.segments for lay in inputs), strict=True):
            sources = {src for src, _ in segs}
            if None in sources:
                self.block(Layout(segs), f"'{node.config['name']}' combines them with channels that stay")
            else:
                self._union(sorted(sources))
        return first

    def _union(self, names: list[str]) -> None:
        roots = [self._find(n) for n in names]
        for root in roots[1:]:
            self.parent[root] = roots[0]

    def _find(self, name: str) -> str:
        while self.parent[name] != name:
            name = self.parent[name]
        return name

    def result(self) -> ChannelGraph:
        """Groups from the union-find; a group with one blocked member is skipped entirely."""
        groups: dict[str, list[str]] = {}
        for name in self.graph.convs:
            groups.setdefault(self._find(name), []).append(name)
        for members in groups.values():
            reasons = [(m, self.blocked[m]) for m in members if m in self.blocked]
            if not reasons:
                self.graph.groups.append(tuple(members))
                continue
            for m in members:
                why = self.blocked.get(m) or f"must keep the same filters as '{reasons[0][0]}': {reasons[0][1]}"
                self.graph.skipped[m] = why
                del self.graph.convs[m]
                warnings.warn(f"pruning: convolution '{m}' is not pruned: {why}", stacklevel=4)
        return self.graph

