"""Markdown tables of a run's ``metrics.json`` for ``report.md``.

Expects the train stage's layout: ``{"folds": [per-fold dict, ...], "test": {...}}`` where a
per-fold dict (and ``test``) holds ``fold`` (its name), ``classification`` (the output of
``classification_metrics``) and/or ``knn`` (the output of ``protocol_eval``). Every figure is
shown in percent; ``—`` marks a figure that could not be computed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .classification import aggregate_folds

RANK1_TITLES = {"rank1": "Rank-1 per sequence", "rank1_window": "Rank-1 per window",
                "rank1_sequence": "Rank-1 per sequence (majority vote of windows)"}


def markdown_tables(metrics: Mapping[str, Any]) -> str:
    """Classification metrics per fold with a mean ± std row (and a ``test`` row), the rank-1
    table per probe condition (NM / BG / CL) and the rank-1 table per probe view, when present."""
    folds = list(metrics.get("folds") or [])
    test = metrics.get("test")
    summary = aggregate_folds(folds) if folds else None
    parts = [_fold_table("Classification (%)", ("classification",), _float_keys(folds, test, ("classification",)),
                         folds, summary, test)]
    for key, title in RANK1_TITLES.items():
        conditions = _keys(folds, test, ("knn", key))
        parts.append(_fold_table(f"{title} (%)", ("knn", key), conditions, folds, summary, test))
        parts.append(_view_table(f"{title} per probe view (%)", key, folds, summary))
    return "\n".join(part for part in parts if part)


def _fold_table(title: str, path: tuple[str, ...], columns: list[str], folds: list[Mapping[str, Any]],
                summary: Mapping[str, Any] | None, test: Mapping[str, Any] | None) -> str:
    """One row per fold (figures under ``path``), then mean ± std over folds, then the test split."""
    if not columns:
        return ""
    rows = [[str(f.get("fold", n))] + [_pct(_get(f, (*path, c))) for c in columns] for n, f in enumerate(folds)]
    if summary is not None and len(folds) > 1:
        rows.append([f"mean ± std ({len(folds)} folds)"] + [
            _pm(_get(summary["mean"], (*path, c)), _get(summary["std"], (*path, c))) for c in columns])
    if test:
        rows.append(["test"] + [_pct(_get(test, (*path, c))) for c in columns])
    return _table(title, ["fold", *(_header(c) for c in columns)], rows)


def _view_table(title: str, key: str, folds: list[Mapping[str, Any]], summary: Mapping[str, Any] | None) -> str:
    """Rows: probe conditions; columns: probe views and their mean; values averaged over folds."""
    views = next((f["knn"]["views"] for f in folds if "views" in f.get("knn", {})), None)
    per_view = _get(summary["mean"], ("knn", f"{key}_per_view")) if summary else None
    if not views or not per_view:
        return ""
    rows = [[_header(c)] + [_pct(_get(per_view, (c, v))) for v in views] + [_pct(_get(summary["mean"], ("knn", key, c)))]
            for c in _keys(folds, None, ("knn", key))]
    suffix = f", mean over {len(folds)} folds" if len(folds) > 1 else ""
    return _table(title.replace(" (%)", f" (%{suffix})"), ["condition", *views, "mean"], rows)


def _table(title: str, header: list[str], rows: list[list[str]]) -> str:
    lines = [f"### {title}", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def _keys(folds: Sequence[Mapping[str, Any]], test: Mapping[str, Any] | None, path: tuple[str, ...]) -> list[str]:
    """The keys of the dicts under ``path``, in first-seen order over the folds and the test split."""
    found = [_get(m, path) for m in [*folds, test or {}]]
    return list(dict.fromkeys(k for d in found if isinstance(d, Mapping) for k in d))


def _float_keys(folds: Sequence[Mapping[str, Any]], test: Mapping[str, Any] | None, path: tuple[str, ...]) -> list[str]:
    """The keys under ``path`` holding a float (a metric) in some fold or the test split."""
    found = [_get(m, path) for m in [*folds, test or {}]]
    return list(dict.fromkeys(k for d in found if isinstance(d, Mapping)
                              for k, v in d.items() if isinstance(v, (float, np.floating))))


def _get(tree: Any, path: tuple[str, ...]) -> Any:
    for key in path:
        if not isinstance(tree, Mapping) or key not in tree:
            return None
        tree = tree[key]
    return tree


def _header(key: str) -> str:
    return key.upper() if len(key) <= 2 else key


def _pct(value: Any) -> str:
    ok = isinstance(value, (int, float, np.number)) and np.isfinite(value)
    return f"{100 * value:.1f}" if ok else "—"


def _pm(mean: Any, std: Any) -> str:
    return "—" if _pct(mean) == "—" else f"{_pct(mean)} ± {_pct(std)}"
