"""The two entry points: prune by percentile, or keep exactly the filters you name."""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Mapping, Sequence
from functools import reduce
from typing import Any

import numpy as np

from .graph import ChannelGraph, analyse
from .layers import conv_kernel
from .report import build_report
from .select import Criterion, Normalise, Rounding, Scope, select_filters
from .surgery import rebuild


def prune_model(model: Any, *, percentile: float, scope: Scope = "global", criterion: Criterion = "l1",
                normalise: Normalise = "none", min_filters: int = 1, granularity: int = 1,
                rounding: Rounding = "up", exclude: Iterable[str] = (),
                protected: Iterable[str] = ()) -> tuple[Any, dict[str, Any]]:
    """Remove the filters whose norm falls below a percentile; returns (smaller model, report).

    ``exclude``: layers the user keeps whole; ``protected``: layers the architecture declares
    (its embedding). The settings are in the report's ``settings``; ``summary`` is one line.
    """
    graph = analyse(model, protected=_protected(model, exclude, protected))
    kernels = {name: conv_kernel(model.get_layer(name)) for name in graph.convs}
    selection = select_filters(
        kernels, percentile=percentile, scope=scope, criterion=criterion, normalise=normalise,
        min_filters=min_filters, granularity=granularity, rounding=rounding, groups=graph.groups)
    keep = {name: kept for name, kept in selection.keep.items() if len(kept) < graph.convs[name]}
    smaller = rebuild(model, graph, keep)
    report = build_report(model, smaller, graph, keep, thresholds=selection.thresholds,
                          global_threshold=selection.global_threshold)
    report["settings"] = {"percentile": percentile, "scope": scope, "criterion": criterion,
                          "normalise": normalise, "min_filters": min_filters,
                          "granularity": granularity, "exclude": sorted(exclude)}
    report["summary"] = f"{criterion.upper()} filter norms below the {percentile:g}th percentile ({scope})"
    return smaller, report


def prune_model_to(model: Any, keep: Mapping[str, Sequence[int] | np.ndarray], *,
                   exclude: Iterable[str] = (), protected: Iterable[str] = ()) -> tuple[Any, dict[str, Any]]:
    """Keep exactly the filters ``keep`` names (conv layer -> kept filter indices); others stay.

    Convolutions that must keep the same filters (joined by an add) keep the union of what is
    asked for them, with a warning. Raises ``ValueError`` for a layer that cannot be pruned
    (excluded, protected, the output, not a convolution) or for bad indices.
    """
    graph = analyse(model, protected=_protected(model, exclude, protected))
    resolved = _resolve(graph, keep)
    smaller = rebuild(model, graph, resolved)
    return smaller, build_report(model, smaller, graph, resolved, thresholds={}, global_threshold=None)


def _protected(model: Any, exclude: Iterable[str], protected: Iterable[str]) -> dict[str, str]:
    """Layer name -> why it keeps all filters: excluded (checked against the model) or protected."""
    names = set(exclude)
    unknown = sorted(names - {layer.name for layer in model.layers})
    if unknown:
        convs = [layer.name for layer in model.layers if hasattr(_inner(layer), "filters")]
        raise ValueError(f"exclude names layers that model {model.name!r} does not have: {unknown}; "
                         f"its convolution layers are {convs}")
    return {**{n: "protected by the architecture" for n in protected}, **{n: "excluded" for n in names}}


def _inner(layer: Any) -> Any:
    return getattr(layer, "layer", layer)


def _resolve(graph: ChannelGraph, keep: Mapping[str, Sequence[int] | np.ndarray]) -> dict[str, np.ndarray]:
    """Checked, sorted kept indices; groups unified; layers that keep everything dropped."""
    out = {}
    for name, indices in keep.items():
        if name not in graph.convs:
            why = graph.skipped.get(name, "it is not a prunable convolution of this model")
            raise ValueError(f"cannot prune layer {name!r}: {why}")
        out[name] = _checked(name, indices, graph.convs[name])
    for group in graph.groups:
        if len(group) > 1 and any(name in out for name in group):
            asked = [out.get(name, np.arange(graph.convs[name])) for name in group]
            union = reduce(np.union1d, asked)
            if any(len(a) != len(union) for a in asked):
                warnings.warn(f"pruning: {list(group)} must keep the same filters (their outputs are "
                              f"added); keeping the union of the filters asked for them", stacklevel=3)
            out.update({name: union for name in group})
    return {name: kept for name, kept in out.items() if len(kept) < graph.convs[name]}


def _checked(name: str, indices: Sequence[int] | np.ndarray, n_filters: int) -> np.ndarray:
    kept = np.asarray(indices)
    if kept.ndim != 1 or kept.size == 0 or not np.issubdtype(kept.dtype, np.integer):
        raise ValueError(f"keep[{name!r}] must be a non-empty 1-D list of filter indices")
    if len(np.unique(kept)) != kept.size or kept.min() < 0 or kept.max() >= n_filters:
        raise ValueError(f"keep[{name!r}] must hold distinct indices in [0, {n_filters})")
    return np.sort(kept)
