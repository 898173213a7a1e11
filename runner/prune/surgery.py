"""Rebuild a genuinely smaller Keras model and copy the kept weights into it.

The functional graph is cloned from its config with fewer ``filters`` in the pruned
convolutions (every other layer infers its new input size when the graph is rebuilt); then
each layer receives its old weights with the removed channels cut out:

* a pruned convolution: kernel and bias along their last (output) axis;
* a layer that follows the channels (``ChannelGraph.slices``): the next convolution's kernel
  along its input axis, ``BatchNormalization``'s gamma/beta/moving statistics, the rows of a
  ``Dense`` (flattened positions after ``Flatten``), of an LSTM/GRU input kernel, or axis 1 of
  ``StripDense``'s (strips, C, D) kernel;
* every other layer: unchanged.
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np

from .graph import ChannelGraph


def rebuild(model: Any, graph: ChannelGraph, keep: dict[str, np.ndarray]) -> Any:
    """A new model like ``model`` in which each conv in ``keep`` has only the kept filters."""
    import keras

    config = copy.deepcopy(model.get_config())
    for entry in config["layers"]:
        entry.pop("build_config", None)  # built again, with the new input sizes, when called
        if entry["name"] in keep:
            _inner_config(entry)["filters"] = len(keep[entry["name"]])
    smaller = keras.Model.from_config(config)
    for layer in model.layers:
        smaller.get_layer(layer.name).set_weights(sliced_weights(layer, graph, keep))
    return smaller


def sliced_weights(layer: Any, graph: ChannelGraph, keep: dict[str, np.ndarray]) -> list[np.ndarray]:
    """The layer's weights without the removed input channels and (for a conv) filters."""
    weights = layer.get_weights()
    if layer.name in graph.slices:
        layout, axes = graph.slices[layer.name]
        rows = layout.kept_positions(keep)
        if rows is not None:
            for index, axis in axes.items():
                weights[index] = np.take(weights[index], rows, axis=axis)
    if layer.name in keep:  # kernel (..., C_in, filters) and bias (filters,)
        weights = [np.take(w, keep[layer.name], axis=-1) for w in weights]
    return weights


def _inner_config(entry: dict[str, Any]) -> dict[str, Any]:
    """The config holding ``filters``: the layer's own, or the wrapped layer's (TimeDistributed)."""
    config = entry["config"]
    if "layer" in config and "filters" not in config:
        config["layer"].pop("build_config", None)
        return config["layer"]["config"]
    return config
