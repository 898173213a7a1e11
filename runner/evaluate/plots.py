"""PNG plots of a run: learning curves, confusion matrix, rank-1 per view.

Figures are drawn with matplotlib's object API (``matplotlib.figure.Figure``, rendered by
the Agg backend; no pyplot state, no display needed) and written atomically: the PNG appears
complete or not at all.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..atomic import atomic_path
from ..errors import DataError

History = Sequence[Mapping[str, Any]]  # one dict per epoch, as Keras' history.csv rows
MAX_ANNOTATED = 20  # confusion matrices with more classes get no per-cell numbers


def plot_learning_curves(histories: Mapping[str, str | Path | History] | Sequence[str | Path],
                         out_png: str | Path) -> None:
    """One panel per metric (``loss``, ``accuracy``, ..., ``lr``): training solid, ``val_``
    dashed, one colour per fold. ``histories`` maps a fold name to its ``history.csv`` path or
    its rows, or lists ``folds/<k>/history.csv`` paths (the fold is the file's folder name)."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    runs = {fold: _rows(h) for fold, h in _named(histories).items()}
    names = list(dict.fromkeys(_base(key) for rows in runs.values() for row in rows for key in row if key != "epoch"))
    if not names:
        raise ValueError("no history rows to plot")
    cols = min(3, len(names))
    fig = Figure(figsize=(4.5 * cols, 3.2 * math.ceil(len(names) / cols) + 0.3), layout="constrained")
    fig.suptitle("solid: training, dashed: validation", fontsize=9)
    axes = fig.subplots(math.ceil(len(names) / cols), cols, squeeze=False).ravel()
    for ax, name in zip(axes, names, strict=False):  # spare axes are hidden below
        for n, (fold, rows) in enumerate(runs.items()):
            for key, style in ((name, "-"), (f"val_{name}", "--")):
                epochs, values = _series(rows, key)
                ax.plot(epochs, values, style, color=f"C{n % 10}", label=f"fold {fold}" if style == "-" else None)
        ax.set(title=name, xlabel="epoch", yscale="log" if name in ("lr", "learning_rate") else "linear")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes[0].legend(fontsize=7)
    for ax in axes[len(names):]:
        ax.set_visible(False)
    _save(fig, out_png)


def plot_confusion_matrix(matrix: Sequence[Sequence[int]] | np.ndarray, class_names: Sequence[str],
                          out_png: str | Path) -> None:
    """Rows true, columns predicted; colour = row-normalised share (recall per class), so rare
    classes read as well as common ones; counts printed in the cells up to 20 classes."""
    from matplotlib.figure import Figure

    counts = np.asarray(matrix, dtype=np.int64)
    n = len(counts)
    if counts.shape != (n, n) or not n:
        raise ValueError(f"confusion matrix must be square and non-empty, got shape {counts.shape}")
    names = list(class_names) if len(class_names) == n else [str(i) for i in range(n)]
    share = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    side = min(24.0, 3.0 + 0.22 * n)
    fig = Figure(figsize=(side + 1.5, side), layout="constrained")
    ax = fig.subplots()
    image = ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    fig.colorbar(image, ax=ax, shrink=0.8, label="share of the true class")
    font = 8 if n <= MAX_ANNOTATED else max(4, 8 - n // 20)
    ax.set_xticks(range(n), names, rotation=90, fontsize=font)
    ax.set_yticks(range(n), names, fontsize=font)
    ax.set(xlabel="predicted", ylabel="true", title="confusion matrix")
    if n <= MAX_ANNOTATED:
        for (i, j), value in np.ndenumerate(counts):
            ax.text(j, i, str(value), ha="center", va="center", fontsize=7,
                    color="white" if share[i, j] > 0.5 else "black")
    _save(fig, out_png)


def plot_rank1_heatmap(rank1_matrix: Mapping[str, Sequence[Sequence[float | None]]], views: Sequence[str],
                       out_png: str | Path) -> None:
    """One panel per probe condition: rank-1 (%) per probe view (rows) and gallery view
    (columns), as ``protocol_eval``'s ``rank1_matrix``; excluded or empty cells are grey."""
    from matplotlib import colormaps
    from matplotlib.figure import Figure

    if not rank1_matrix:
        raise ValueError("no rank-1 matrix to plot")
    fig = Figure(figsize=(5.0 * len(rank1_matrix) + 1, 4.6), layout="constrained")
    axes = fig.subplots(1, len(rank1_matrix), squeeze=False).ravel()
    cmap = colormaps["viridis"].with_extremes(bad="lightgrey")
    for ax, (condition, rows) in zip(axes, rank1_matrix.items(), strict=True):
        values = 100 * np.array([[np.nan if x is None else x for x in row] for row in rows], dtype=float)
        labels = list(views) if len(views) == len(values) else [str(i) for i in range(len(values))]
        image = ax.imshow(np.ma.masked_invalid(values), cmap=cmap, vmin=0, vmax=100)
        for (i, j), value in np.ndenumerate(values):
            if np.isfinite(value) and len(values) <= 12:
                ax.text(j, i, f"{value:.0f}", ha="center", va="center", fontsize=6,
                        color="black" if value > 60 else "white")
        ax.set_xticks(range(len(labels)), labels, rotation=90, fontsize=7)
        ax.set_yticks(range(len(labels)), labels, fontsize=7)
        ax.set(title=f"rank-1 (%) — {condition}", xlabel="gallery view", ylabel="probe view")
    fig.colorbar(image, ax=list(axes), shrink=0.8)
    _save(fig, out_png)


def _named(histories: Mapping[str, Any] | Sequence[str | Path]) -> dict[str, Any]:
    """``histories`` as {fold name: path or rows}."""
    if isinstance(histories, Mapping):
        return {str(k): v for k, v in histories.items()}
    return {Path(p).parent.name or str(p): p for p in histories}


def _rows(history: str | Path | History) -> list[dict[str, Any]]:
    """The rows of a history: read from a CSV file, or given."""
    if not isinstance(history, (str, Path)):
        return [dict(row) for row in history]
    path = Path(history)
    try:
        with path.open(newline="", encoding="utf-8") as fh:
            return list(csv.DictReader(fh))
    except OSError as exc:
        raise DataError(str(path), f"cannot read the training history ({exc.strerror or exc}); "
                                   "re-run the fold with `gaitrun resume <run folder>`") from exc


def _base(key: str) -> str:
    return key[4:] if key.startswith("val_") else key


def _series(rows: list[dict[str, Any]], key: str) -> tuple[np.ndarray, np.ndarray]:
    """(epochs, values) of ``key`` over the rows that hold a number for it."""
    points = []
    for n, row in enumerate(rows, start=1):
        value, epoch = _number(row.get(key)), _number(row.get("epoch"))
        if value is not None:
            points.append((n if epoch is None else epoch, value))
    return np.asarray([p[0] for p in points]), np.asarray([p[1] for p in points])


def _number(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _save(fig: Any, out_png: str | Path) -> None:
    with atomic_path(out_png, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=110)
