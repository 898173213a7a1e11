"""A fold's evaluation embeddings on disk (``folds/<k>/embeddings.npz``) and rank-1 from them.

The file holds one row per evaluated sequence:

- ``embedding``: float32 (N, D), the per-sequence embedding the headline rank-1 was computed on
  (L2-normalised; GaitSet's strips normalised one by one and flattened);
- ``label``, ``subject``, ``condition``, ``view``, ``sequence``, ``path``: strings ("" when unknown);
- ``role``: "gallery" or "probe"; ``position``: the sample's index in the run's data;
- ``window_embedding`` (W, D) and ``window_owner`` (W,): every window's raw embedding and the
  row it belongs to (the per-window figure's input);
- ``settings``: JSON of the k-NN settings (k, metric, protocol, exclude_identical_view).

``rank1_from_file`` recomputes the headline figures of ``metrics.json`` from the file alone.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..atomic import atomic_path
from ..data.records import Sample

FIELDS = ("label", "subject", "condition", "view", "sequence", "path")


def save_embeddings(path: str | Path, *, embedding: np.ndarray, samples: Sequence[Sample], roles: Sequence[str],
                    positions: np.ndarray, window_embedding: np.ndarray, window_owner: np.ndarray,
                    settings: dict[str, Any]) -> None:
    """Write the npz atomically (no pickled objects: every array is numeric or a string)."""
    arrays = {name: np.asarray(["" if getattr(s, name) is None else str(getattr(s, name)) for s in samples])
              for name in FIELDS}
    with atomic_path(path, suffix=".npz") as tmp:
        np.savez_compressed(tmp, embedding=np.asarray(embedding, dtype=np.float32), role=np.asarray(roles),
                            position=np.asarray(positions, dtype=np.int64),
                            window_embedding=np.asarray(window_embedding, dtype=np.float32),
                            window_owner=np.asarray(window_owner, dtype=np.int64),
                            settings=np.asarray(json.dumps(settings)), **arrays)


def samples_of(data: Any) -> list[Sample]:
    """The Sample (metadata) of every row of a loaded embeddings file."""
    columns = {name: data[name].tolist() for name in FIELDS}
    return [Sample(**{name: (columns[name][i] or None) for name in FIELDS if name != "path"},
                   path=columns["path"][i]) for i in range(len(data["embedding"]))]


def rank1_from_file(path: str | Path, **overrides: Any) -> dict[str, Any]:
    """``protocol_eval`` on a saved file: the same figures as the fold's ``metrics.json``
    ``knn.rank1`` (``overrides`` change k, metric, protocol or exclude_identical_view)."""
    from .knn import protocol_eval

    with np.load(path, allow_pickle=False) as data:
        settings = {**json.loads(str(data["settings"])), **overrides}
        roles = data["role"]
        return protocol_eval(data["embedding"], samples_of(data), np.flatnonzero(roles == "gallery"),
                             np.flatnonzero(roles == "probe"), per="subsequence",
                             sequence_ids=data["position"].tolist(), **settings)
