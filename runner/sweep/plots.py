"""The sweep's plots: each search metric against each searched key, and the Pareto scatter
with its front drawn. Finished trials only; listed values (choice, grid) are categories."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from ..atomic import atomic_path
from ..recipe.search import Objective, Search
from .space import encode, targets


def _figure(width: float = 5.0, height: float = 3.5) -> tuple[Any, Any]:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height))
    FigureCanvasAgg(fig)
    return fig, fig.subplots()


def _save(fig: Any, path: Path) -> Path:
    fig.tight_layout()
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    return path


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text)


def _plot_one(rows: list[dict[str, Any]], search: Search, key: str, metric: str, path: Path) -> Path:
    domain = search.space[key]
    fig, ax = _figure()
    pairs = [(r[key], r[metric]) for r in rows if isinstance(r.get(metric), (int, float))]
    if domain.kind in ("choice", "grid"):
        labels = [str(encode(v)) for v in domain.args]
        ax.scatter([labels.index(str(encode(x))) for x, _ in pairs], [y for _, y in pairs])
        ax.set_xticks(range(len(labels)), labels, rotation=30 if max(map(len, labels)) > 6 else 0)
    else:
        ax.scatter([x for x, _ in pairs], [y for _, y in pairs])
        if domain.kind == "loguniform":
            ax.set_xscale("log")
    ax.set_xlabel(key)
    ax.set_ylabel(metric)
    ax.set_title(f"{metric} vs {key} ({len(pairs)} finished trials)", fontsize=9)
    return _save(fig, path)


def plot_metric_vs_keys(rows: list[dict[str, Any]], search: Search, out_dir: Path) -> list[Path]:
    """``<metric>_vs_<key>.png`` for every search metric and searched key."""
    done = [r for r in rows if r["status"] == "done"]
    return [_plot_one(done, search, key, t.metric, out_dir / f"{_slug(t.metric)}_vs_{_slug(key)}.png")
            for t in targets(search) for key in search.space]


def plot_pareto(rows: list[dict[str, Any]], front: list[int], objectives: list[Objective], path: Path) -> Path:
    """The finished trials on the first two objectives; the front's trials joined by a line."""
    x_name, y_name = objectives[0].metric, objectives[1].metric
    fig, ax = _figure(5.5, 4.0)
    points = [(i, r.get(x_name), r.get(y_name)) for i, r in enumerate(rows) if r["status"] == "done"]
    points = [(i, x, y) for i, x, y in points if isinstance(x, (int, float)) and isinstance(y, (int, float))]
    others = [(x, y) for i, x, y in points if i not in front]
    on_front = sorted((x, y) for i, x, y in points if i in front)
    ax.scatter([x for x, _ in others], [y for _, y in others], color="#999999", label="dominated")
    ax.plot([x for x, _ in on_front], [y for _, y in on_front], "o-", color="#d62728", label="Pareto front")
    for i, x, y in points:
        if i in front:
            ax.annotate(rows[i]["trial_id"].split("_")[-1], (x, y), fontsize=7, xytext=(3, 3),
                        textcoords="offset points")
    ax.set_xlabel(f"{x_name} ({objectives[0].mode})")
    ax.set_ylabel(f"{y_name} ({objectives[1].mode})")
    ax.legend(fontsize=8)
    return _save(fig, path)
