"""Embeddings for the gait evaluation, straight from the clip store (no tf.data, no tracing).

- ``embed_windows``: every window of a sequence, ``clip.stride`` apart, plus one window ending
  at the last frame, so that the windows cover all the frames (a sequence shorter than the
  window gives one window filled as ``data.clip.pad`` says, as in training).
- ``embed_whole``: every sequence as one input of all its frames, for set models whose input
  takes any number of frames (GaitSet's set pooling then runs over the whole sequence).

The model is called eagerly in batches (``training=False``), so variable-length sequences
cause no tf.function retracing.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..data.preprocess import clip_windows
from ..data.raw_inputs import layout, take

SET_KINDS = ("frame_set", "sequence", "clip3d")  # layouts with a time axis a model may leave open


def takes_whole_sequences(model: Any, kind: str) -> bool:
    """True when the model's input has an open time axis (a set model such as GaitSet)."""
    shape = tuple(model.inputs[0].shape)
    return kind in SET_KINDS and len(shape) > 1 and shape[1] is None


def _run(sub: Any, batch: list[np.ndarray]) -> np.ndarray:
    out = np.asarray(sub([np.stack(batch)], training=False), dtype=np.float32)  # [x]: the inputs' structure
    return out.reshape(len(out), -1) if out.ndim > 3 else out  # a 1x1 conv code (cnn3d): one vector


def _batched(sub: Any, inputs: Sequence[Any], make: Any, batch_size: int) -> np.ndarray:
    out = [_run(sub, [make(item) for item in inputs[i:i + batch_size]]) for i in range(0, len(inputs), batch_size)]
    return np.concatenate(out)


def embed_windows(sub: Any, prep: Any, positions: np.ndarray, *, frames: int, stride: int | None,
                  batch_size: int, pad: str = "error") -> tuple[np.ndarray, np.ndarray]:
    """(embedding per window, owning store position per window) over the covering windows."""
    length, store = frames, prep.store
    pairs = [(int(p), s) for p in positions for s in clip_windows(int(store.lengths[p]), length, stride or length)]

    def make(pair: tuple[int, int]) -> np.ndarray:
        return layout(take(store.clip(pair[0]), pair[1], length, pad).astype(np.float32), prep.kind)

    return _batched(sub, pairs, make, batch_size), np.asarray([p for p, _ in pairs], dtype=np.int64)


def embed_whole(sub: Any, prep: Any, positions: np.ndarray, *, batch_size: int) -> tuple[np.ndarray, np.ndarray]:
    """(one embedding per sequence from all its frames, store positions, sorted)."""
    store = prep.store
    positions = np.unique(np.asarray(positions, dtype=np.int64))
    lengths = store.lengths[positions]
    rows = []
    for n in np.unique(lengths):  # equal lengths share a batch
        group = positions[lengths == n]
        emb = _batched(sub, group, lambda p: layout(store.clip(int(p)).astype(np.float32), prep.kind), batch_size)
        rows.extend(zip(group.tolist(), emb, strict=True))
    rows.sort(key=lambda r: r[0])
    return np.stack([e for _, e in rows]), np.asarray([p for p, _ in rows], dtype=np.int64)
