"""k-NN rank-1 on embeddings, and the gait protocols built on it (CASIA-B, TUM-GAID).

Embeddings are L2-normalised before any distance: a (N, D) array row by row; a (N, S, D)
array of S strips (GaitSet's horizontal pyramid) strip by strip, then flattened to (N, S*D),
so every strip weighs the same, as GaitSet's evaluation does. After this normalisation all
rows have the same norm, so ``euclidean`` and ``cosine`` rank neighbours identically: the
metric changes the distance values, not the rank-1 figures. Distances are computed in float64
(``distances``): the float32 expansion sqrt(|p|^2 + |g|^2 - 2 p.g) loses most digits of a small
distance and can swap two nearly tied neighbours.

A probe is predicted by a majority vote among its ``k`` nearest gallery entries; a tie goes
to the tied label with the nearest entry. Per sequence, the predictions of a sequence's rows
(windows, subsequences) are voted the same way (a tie goes to the label of the row closest
to its gallery match), as Embedded-Gait's per-video accuracy. Figures are fractions in [0, 1];
a figure that cannot be computed (no probes, or no gallery entries left) is ``None``.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..data.records import Sample
from ..errors import DataError

# Conditions in the order papers list them; others follow alphabetically.
CONDITION_ORDER = ("nm", "bg", "cl", "normal", "bag", "backpack", "shoes")
ALL = "all"  # the one condition / view when a protocol does not split by it


def normalise(embeddings: np.ndarray) -> np.ndarray:
    """L2-normalised (N, D) rows, or (N, S, D) strips normalised one by one and flattened to
    (N, S*D); float64."""
    emb = np.asarray(embeddings, dtype=np.float64)
    if emb.ndim not in (2, 3):
        raise ValueError(f"embeddings must be (N, D) or (N, strips, D), got shape {emb.shape}")
    norms = np.linalg.norm(emb, axis=-1, keepdims=True)
    return (emb / np.maximum(norms, 1e-12)).reshape(len(emb), -1)


def distances(probe: np.ndarray, gallery: np.ndarray, metric: str) -> np.ndarray:
    """(P, G) distances between rows: ``euclidean`` or ``cosine`` (1 - cosine similarity),
    computed in float64 whatever the input dtype (float16/float32 rows are upcast first)."""
    probe, gallery = np.asarray(probe, dtype=np.float64), np.asarray(gallery, dtype=np.float64)
    dot = probe @ gallery.T
    p2 = np.einsum("ij,ij->i", probe, probe)[:, None]
    g2 = np.einsum("ij,ij->i", gallery, gallery)[None, :]
    if metric == "euclidean":
        return np.sqrt(np.maximum(p2 + g2 - 2 * dot, 0))
    if metric == "cosine":
        return 1 - dot / np.maximum(np.sqrt(p2 * g2), 1e-12)
    raise ValueError(f"metric must be 'euclidean' or 'cosine', got {metric!r}")


def vote(groups: np.ndarray, labels: np.ndarray, dists: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Majority vote of ``labels`` within each group; a tie goes to the tied label with the
    smallest distance. Returns (group, winning label, its smallest distance), sorted by group."""
    names, codes = np.unique(labels, return_inverse=True)
    pairs, inverse = np.unique(np.stack([groups, codes.ravel()], axis=1), axis=0, return_inverse=True)
    inverse = inverse.ravel()
    counts = np.bincount(inverse)
    nearest = np.full(len(pairs), np.inf)
    np.minimum.at(nearest, inverse, dists)
    order = np.lexsort((nearest, -counts, pairs[:, 0]))  # by group, most votes, then nearest
    _, first = np.unique(pairs[order, 0], return_index=True)
    win = order[first]
    return pairs[win, 0], names[pairs[win, 1]], nearest[win]


def predict(dist: np.ndarray, gallery_labels: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(predicted label, distance to the nearest gallery entry of that label) for every probe
    row of ``dist`` (probes x gallery): the vote of its ``k`` nearest gallery entries."""
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    nearest = np.argsort(dist, axis=1, kind="stable")[:, :k]
    rows = np.repeat(np.arange(len(dist)), nearest.shape[1])
    _, labels, dists = vote(rows, gallery_labels[nearest].ravel(), np.take_along_axis(dist, nearest, 1).ravel())
    return labels, dists


def knn_rank1(gallery_emb: np.ndarray, gallery_labels: Sequence[Hashable], probe_emb: np.ndarray,
              probe_labels: Sequence[Hashable], *, k: int = 1, metric: str = "euclidean") -> tuple[float, np.ndarray]:
    """(rank-1 accuracy, predicted label per probe) of probes against the whole gallery."""
    gallery_labels, probe_labels = np.asarray(gallery_labels), np.asarray(probe_labels)
    if not len(gallery_labels) or not len(probe_labels):
        raise ValueError("need at least one gallery and one probe embedding")
    if len(gallery_labels) != len(gallery_emb) or len(probe_labels) != len(probe_emb):
        raise ValueError("need one label per embedding row")
    dist = distances(normalise(probe_emb), normalise(gallery_emb), metric)
    predictions, _ = predict(dist, gallery_labels, k)
    return float(np.mean(predictions == probe_labels)), predictions


def pool_sequences(embeddings: np.ndarray, owners: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One embedding per sequence from the embeddings of its windows: every window normalised
    (as ``normalise``), their mean per owner, normalised again. Returns (float64 (N, D) rows,
    the sorted owners they belong to)."""
    emb = normalise(embeddings)
    positions, inverse = np.unique(np.asarray(owners), return_inverse=True)
    sums = np.zeros((len(positions), emb.shape[1]))
    np.add.at(sums, inverse.ravel(), emb)
    return normalise(sums.reshape(len(positions), *np.shape(embeddings)[1:])), positions


# --- gait protocols ---------------------------------------------------------------------

@dataclass(frozen=True)
class _Side:
    """The gallery or the probes: metadata per embedding row of that side."""

    labels: np.ndarray
    views: np.ndarray
    conditions: np.ndarray
    groups: np.ndarray  # sequence number per row (rows of one sequence share it)


def protocol_eval(embeddings: np.ndarray, samples: Sequence[Sample], gallery_idx: Sequence[int],
                  probe_idx: Sequence[int], *, k: int = 1, metric: str = "euclidean", protocol: str = "casia_b",
                  exclude_identical_view: bool = True, per: str = "both",
                  sequence_ids: Sequence[Hashable] | None = None) -> dict[str, Any]:
    """Rank-1 of probes against the gallery, per probe condition and view (``evaluate.knn``).

    ``embeddings`` has one row per entry of ``samples`` (a sample cut into several windows
    appears once per window); ``gallery_idx`` and ``probe_idx`` are disjoint row indices.
    The identity is ``Sample.label``. ``protocol``:

    - ``casia_b``: for each probe condition (``Sample.condition``), probe view and gallery view
      (the identical view skipped when ``exclude_identical_view``), rank-1 of that view's probes
      against the gallery entries of that gallery view; averaged over gallery views per probe
      view, then over probe views per condition (the 11 x 11 CASIA-B table, diagonal excluded).
    - ``tum_gaid``: the same per condition, all views as one (no view is excluded).
    - ``none``: every probe against the whole gallery, one figure under condition ``"all"``.

    ``per``: ``subsequence`` scores every row (keys ``rank1``...), ``sequence`` votes the rows of
    each sequence (keys ``rank1_sequence``...), ``both`` reports both. ``sequence_ids`` (one per
    row) says which rows form a sequence; by default rows sharing label, subject, condition,
    sequence and view (or, without a ``sequence``, path and index) do. With more than one view the
    result also holds ``views``, ``<key>_per_view`` {condition: {probe view: x}} and
    ``<key>_matrix`` {condition: probe view x gallery view, ``None`` where excluded or empty}.
    """
    if per not in ("subsequence", "sequence", "both"):
        raise ValueError(f"per must be 'subsequence', 'sequence' or 'both', got {per!r}")
    if protocol not in ("casia_b", "tum_gaid", "none"):
        raise ValueError(f"protocol must be 'casia_b', 'tum_gaid' or 'none', got {protocol!r}")
    gallery_idx, probe_idx = _indices(gallery_idx, probe_idx, len(samples), len(embeddings))
    ids = default_sequence_ids(samples) if sequence_ids is None else list(sequence_ids)
    gallery, probes = (_side(samples, ids, idx, protocol) for idx in (gallery_idx, probe_idx))
    emb = normalise(embeddings)
    dist = distances(emb[probe_idx], emb[gallery_idx], metric)
    exclude = exclude_identical_view and protocol == "casia_b"
    views = sorted(set(gallery.views) | set(probes.views), key=_view_key)
    conditions = sorted(set(probes.conditions), key=_condition_key)
    grids = {c: _grid(dist, gallery, probes, c, views, k=k, exclude=exclude) for c in conditions}
    out: dict[str, Any] = {"protocol": protocol, "k": k, "metric": metric, "per": per,
                           "exclude_identical_view": exclude, "conditions": conditions,
                           "gallery": int(len(gallery_idx)),
                           "probes": {c: int(np.sum(probes.conditions == c)) for c in conditions},
                           "probe_sequences": {c: len(set(probes.groups[probes.conditions == c])) for c in conditions}}
    if len(views) > 1:
        out["views"] = views
    for mode in ("subsequence", "sequence"):
        if per in (mode, "both"):
            out.update(_tables({c: grid[mode] for c, grid in grids.items()}, views,
                               "rank1" if mode == "subsequence" else "rank1_sequence"))
    return out


def default_sequence_ids(samples: Sequence[Sample]) -> list[tuple]:
    """One id per sample: (label, subject, condition, sequence, view), or (path, index) without a sequence."""
    return [(s.label, s.subject, s.condition, s.sequence, s.view) if s.sequence is not None else (s.path, s.index)
            for s in samples]


def _indices(gallery_idx: Sequence[int], probe_idx: Sequence[int], n_samples: int,
             n_rows: int) -> tuple[np.ndarray, np.ndarray]:
    """The index arrays as int arrays; raise if they are empty, out of range or overlap."""
    if n_samples != n_rows:
        raise ValueError(f"{n_rows} embedding rows but {n_samples} samples: give one sample per row")
    gallery, probe = np.asarray(gallery_idx, dtype=np.int64), np.asarray(probe_idx, dtype=np.int64)
    if not len(gallery) or not len(probe):
        raise ValueError(f"need a gallery and probes, got {len(gallery)} and {len(probe)} rows")
    if min(gallery.min(), probe.min()) < 0 or max(gallery.max(), probe.max()) >= n_rows:
        raise ValueError(f"gallery/probe indices must be in [0, {n_rows})")
    if np.intersect1d(gallery, probe).size:
        raise ValueError("gallery and probes share rows: a probe would match itself")
    return gallery, probe


def _side(samples: Sequence[Sample], ids: list[Hashable], idx: np.ndarray, protocol: str) -> _Side:
    """Labels, views, conditions and sequence numbers of the rows ``idx``."""
    if len(ids) != len(samples):
        raise ValueError(f"{len(ids)} sequence ids for {len(samples)} rows: give one per row")
    rows = [samples[i] for i in idx]
    views = _field(rows, "view", protocol) if protocol == "casia_b" else [ALL] * len(rows)
    conditions = _field(rows, "condition", protocol) if protocol != "none" else [ALL] * len(rows)
    codes = {key: n for n, key in enumerate(dict.fromkeys(ids))}
    groups = [codes[ids[i]] for i in idx]
    labels = [s.label for s in rows]
    if len(set(zip(groups, labels, strict=True))) != len(set(groups)):
        raise ValueError("rows of one sequence have different labels: check sequence_ids")
    return _Side(labels=np.asarray(labels), views=np.asarray(views, dtype=object),
                 conditions=np.asarray(conditions, dtype=object), groups=np.asarray(groups, dtype=np.int64))


def _field(rows: list[Sample], name: str, protocol: str) -> list[str]:
    """``view`` or ``condition`` of every row; a DataError naming the first sample without it."""
    values = [getattr(s, name) for s in rows]
    if None in values:
        missing = rows[values.index(None)]
        raise DataError(missing.path, f"has no {name}, which evaluate.knn.protocol '{protocol}' needs; "
                                      "set evaluate.knn.protocol to 'none' (or 'tum_gaid' for one view)")
    return [str(v) for v in values]


def _view_key(view: str) -> tuple:
    return (0, int(view), view) if view.isascii() and view.isdigit() else (1, 0, view)


def _condition_key(condition: str) -> tuple:
    known = condition in CONDITION_ORDER
    return (0, CONDITION_ORDER.index(condition), "") if known else (1, 0, condition)


def _grid(dist: np.ndarray, gallery: _Side, probes: _Side, condition: str, views: list[str], *,
          k: int, exclude: bool) -> dict[str, np.ndarray]:
    """{"subsequence": (V, V) rank-1, "sequence": (V, V) rank-1} of one condition's probes
    (rows: probe view, columns: gallery view; NaN where excluded or empty)."""
    grid = {mode: np.full((len(views), len(views)), np.nan) for mode in ("subsequence", "sequence")}
    for i, probe_view in enumerate(views):
        rows = np.flatnonzero((probes.conditions == condition) & (probes.views == probe_view))
        for j, gallery_view in enumerate(views):
            cols = np.flatnonzero(gallery.views == gallery_view)
            if (exclude and i == j) or not len(rows) or not len(cols):
                continue
            predicted, nearest = predict(dist[np.ix_(rows, cols)], gallery.labels[cols], k)
            hits = _hits(predicted, nearest, probes.labels[rows], probes.groups[rows])
            for mode, value in hits.items():
                grid[mode][i, j] = value
    return grid


def _hits(predicted: np.ndarray, nearest: np.ndarray, labels: np.ndarray, groups: np.ndarray) -> dict[str, float]:
    """Rank-1 per row and per sequence (the vote of the sequence's rows)."""
    _, voted, _ = vote(groups, predicted, nearest)
    _, first = np.unique(groups, return_index=True)  # sorted by group, as the vote
    return {"subsequence": float(np.mean(predicted == labels)), "sequence": float(np.mean(voted == labels[first]))}


def _tables(matrices: dict[str, np.ndarray], views: list[str], key: str) -> dict[str, Any]:
    """``key`` {condition: x}, and with several views ``key_per_view`` and ``key_matrix``."""
    per_view = {c: [_mean(row) for row in m] for c, m in matrices.items()}
    out: dict[str, Any] = {key: {c: _json(_mean(np.asarray(v))) for c, v in per_view.items()}}
    if len(views) > 1:
        out[f"{key}_per_view"] = {c: {view: _json(x) for view, x in zip(views, v, strict=True)} for c, v in per_view.items()}
        out[f"{key}_matrix"] = {c: [[_json(x) for x in row] for row in m] for c, m in matrices.items()}
    return out


def _mean(values: np.ndarray) -> float:
    """Mean of the finite values; NaN when there are none."""
    finite = values[np.isfinite(values)]
    return float(finite.mean()) if finite.size else float("nan")


def _json(value: float) -> float | None:
    return None if np.isnan(value) else float(value)
