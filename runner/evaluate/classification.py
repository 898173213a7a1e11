"""Classifier metrics of one fold, and their mean and standard deviation across folds.

Every figure is a fraction in [0, 1] (a Python ``float``), so the dicts go straight into
``metrics.json``. Class indices run over ``range(len(class_names))``; a class without samples
in the fold is listed in ``classes_without_samples`` and left out of the macro averages
instead of adding an ill-defined 0/0 to them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

METRIC_KEYS = ("accuracy", "top_k", "precision", "recall", "f1_macro", "f1_per_class", "confusion_matrix")


def classification_metrics(y_true: np.ndarray, probs: np.ndarray, *, metrics: Sequence[str], top_k: int,
                           class_names: Sequence[str]) -> dict[str, Any]:
    """The requested ``metrics`` (names of ``evaluate.metrics``) of argmax predictions.

    ``y_true`` holds class indices (N,), ``probs`` scores per class (N, C) with C equal to
    ``len(class_names)``. Keys: ``accuracy``; ``top{k}_accuracy`` (k larger than C counts
    every sample as a hit); ``precision_macro``, ``recall_macro``, ``f1_macro`` (averaged over
    the classes that have samples; a class never predicted scores 0, scikit-learn's
    ``zero_division=0``); ``per_class`` {name: {precision, recall, f1, support}};
    ``confusion_matrix`` (rows true, columns predicted) with ``class_names``. ``samples`` and
    ``classes_without_samples`` are always present.
    """
    y_true, probs = _checked(y_true, probs, class_names)
    unknown = sorted(set(metrics) - set(METRIC_KEYS))
    if unknown:
        raise ValueError(f"unknown metrics {unknown}; known: {list(METRIC_KEYS)}")
    y_pred = probs.argmax(axis=1)
    support = np.bincount(y_true, minlength=len(class_names))
    out: dict[str, Any] = {"samples": int(len(y_true)),
                           "classes_without_samples": [class_names[c] for c in np.flatnonzero(support == 0)]}
    if "accuracy" in metrics:
        out["accuracy"] = float(np.mean(y_pred == y_true))
    if "top_k" in metrics:
        out[f"top{top_k}_accuracy"] = top_k_accuracy(y_true, probs, top_k)
    out.update(_macro(y_true, y_pred, np.flatnonzero(support > 0), metrics))
    if "f1_per_class" in metrics:
        out["per_class"] = _per_class(y_true, y_pred, class_names)
    if "confusion_matrix" in metrics:
        out["confusion_matrix"] = _confusion(y_true, y_pred, len(class_names))
        out["class_names"] = list(class_names)
    return out


def top_k_accuracy(y_true: np.ndarray, probs: np.ndarray, k: int) -> float:
    """Fraction of samples whose true class is among the ``k`` highest scores (ties: lower index first)."""
    if k < 1:
        raise ValueError(f"top_k must be at least 1, got {k}")
    best = np.argsort(-probs, axis=1, kind="stable")[:, :k]
    return float(np.mean((best == y_true[:, None]).any(axis=1)))


def _checked(y_true: Any, probs: Any, class_names: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """``y_true`` as int64 (N,) and ``probs`` as float (N, C); raise on shapes that do not fit."""
    y_true = np.asarray(y_true).astype(np.int64).reshape(-1)
    probs = np.asarray(probs, dtype=np.float64)
    if probs.ndim != 2 or probs.shape != (len(y_true), len(class_names)):
        raise ValueError(f"probs must be (samples, classes) = ({len(y_true)}, {len(class_names)}), "
                         f"got {probs.shape}")
    if not len(y_true):
        raise ValueError("no samples to score")
    if y_true.min() < 0 or y_true.max() >= len(class_names):
        raise ValueError(f"labels must be class indices in [0, {len(class_names)}), got {y_true.min()}..{y_true.max()}")
    return y_true, probs


def _macro(y_true: np.ndarray, y_pred: np.ndarray, present: np.ndarray, metrics: Sequence[str]) -> dict[str, float]:
    """Macro precision / recall / F1 over the ``present`` classes, as requested."""
    wanted = {"precision": "precision_macro", "recall": "recall_macro", "f1_macro": "f1_macro"}
    keys = [key for name, key in wanted.items() if name in metrics]
    if not keys:
        return {}
    from sklearn.metrics import precision_recall_fscore_support

    p, r, f, _ = precision_recall_fscore_support(y_true, y_pred, labels=present, average="macro", zero_division=0)
    values = {"precision_macro": p, "recall_macro": r, "f1_macro": f}
    return {key: float(values[key]) for key in keys}


def _per_class(y_true: np.ndarray, y_pred: np.ndarray, class_names: Sequence[str]) -> dict[str, dict[str, float]]:
    """{class name: {precision, recall, f1, support}}; a class without samples has support 0."""
    from sklearn.metrics import precision_recall_fscore_support

    p, r, f, s = precision_recall_fscore_support(y_true, y_pred, labels=np.arange(len(class_names)),
                                                 average=None, zero_division=0)
    return {name: {"precision": float(p[c]), "recall": float(r[c]), "f1": float(f[c]), "support": int(s[c])}
            for c, name in enumerate(class_names)}


def _confusion(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> list[list[int]]:
    from sklearn.metrics import confusion_matrix

    return confusion_matrix(y_true, y_pred, labels=np.arange(n_classes)).tolist()


def aggregate_folds(per_fold: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Mean and standard deviation of every float metric across folds.

    Nested dicts are followed (``{"knn": {"rank1": {"nm": ...}}}`` gives a nested mean);
    lists (confusion matrices), ints (counts, settings), bools and ``None`` are not metrics and
    are skipped. The std is the *sample* std (``ddof=1``) when at least two folds report a
    metric, else 0. A metric missing from some folds is averaged over the folds that report it
    and listed (as its key path joined by ``/``) in ``partial``.
    Returns ``{"mean": {...}, "std": {...}, "folds": n, "partial": [...]}``.
    """
    values: dict[tuple[str, ...], list[float]] = {}
    for fold in per_fold:
        for path, value in _float_leaves(fold, ()):
            values.setdefault(path, []).append(value)
    mean: dict[str, Any] = {}
    std: dict[str, Any] = {}
    for path, vals in values.items():
        _put(mean, path, float(np.mean(vals)))
        _put(std, path, float(np.std(vals, ddof=1)) if len(vals) > 1 else 0.0)
    partial = ["/".join(p) for p, vals in values.items() if len(vals) < len(per_fold)]
    return {"mean": mean, "std": std, "folds": len(per_fold), "partial": partial}


def _float_leaves(tree: Mapping[str, Any], path: tuple[str, ...]) -> list[tuple[tuple[str, ...], float]]:
    """(key path, value) of every finite float in ``tree``, depth first."""
    out = []
    for key, value in tree.items():
        if isinstance(value, Mapping):
            out += _float_leaves(value, (*path, str(key)))
        elif isinstance(value, (float, np.floating)) and np.isfinite(value):
            out.append(((*path, str(key)), float(value)))
    return out


def _put(tree: dict[str, Any], path: tuple[str, ...], value: float) -> None:
    for key in path[:-1]:
        tree = tree.setdefault(key, {})
    tree[path[-1]] = value
