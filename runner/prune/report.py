"""The pruning report (a JSON-ready dict) and its bar chart."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from .flops import count_flops
from .graph import ChannelGraph


def build_report(model: Any, smaller: Any, graph: ChannelGraph, keep: dict[str, np.ndarray], *,
                 thresholds: dict[str, float], global_threshold: float | None) -> dict[str, Any]:
    """Per-layer filter counts and thresholds, skipped convs, and totals before/after.

    ``layers``: every prunable conv -> ``filters_before``, ``filters_after``, ``threshold``
    (``None`` when the filters were chosen by hand) and ``kept`` (the kept filter indices).
    ``totals``: ``filters`` (over those convs), ``params`` (``count_params``) and ``flops``
    (see ``flops.py``), each ``{"before", "after"}``.
    """
    layers = {}
    for name, n in graph.convs.items():
        kept = keep.get(name, np.arange(n))
        threshold = thresholds.get(name)
        layers[name] = {"filters_before": n, "filters_after": len(kept),
                        "threshold": None if threshold is None else float(threshold),
                        "kept": [int(i) for i in kept]}
    before = sum(v["filters_before"] for v in layers.values())
    after = sum(v["filters_after"] for v in layers.values())
    return {
        "layers": layers,
        "skipped": dict(graph.skipped),
        "groups": [list(g) for g in graph.groups if len(g) > 1],
        "global_threshold": None if global_threshold is None else float(global_threshold),
        "totals": {
            "filters": {"before": before, "after": after},
            "params": {"before": int(model.count_params()), "after": int(smaller.count_params())},
            "flops": {"before": count_flops(model), "after": count_flops(smaller)},
        },
    }


def plot_filters_kept(report: dict[str, Any], path: str | Path) -> Path:
    """Save a bar chart of original vs kept filters per layer (PNG) to ``path``."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    names = list(report["layers"])
    before = [report["layers"][n]["filters_before"] for n in names]
    after = [report["layers"][n]["filters_after"] for n in names]
    fig = Figure(figsize=(max(6.0, 0.6 * len(names)), 4.0))
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    x = np.arange(len(names))
    ax.bar(x, before, color="#cccccc", label="original")
    ax.bar(x, after, color="#1f77b4", label="kept")
    for xi, b, a in zip(x, before, after, strict=True):
        ax.text(xi, b, f"{a / b:.0%}", ha="center", va="bottom", fontsize=8)
    ax.set_xticks(x, names, rotation=45, ha="right")
    ax.set_ylabel("filters")
    totals = report["totals"]["filters"]
    ax.set_title(f"Filters kept per layer: {totals['after']} of {totals['before']}")
    ax.legend()
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png", dpi=100)
    return path
