"""The tf.data input pipeline over a ClipStore.

Training: sample positions, shuffled (seeded, reshuffled every epoch) or drawn balanced
across classes / conditions, endless (``steps_per_epoch`` bounds an epoch) -> a random
window of ``frames`` steps (temporal crop) -> the architecture's layout -> augmentations ->
batch -> prefetch. Evaluation: every deterministic window (``clip.stride`` apart) of every
sample, in order, with ``owner`` saying which sample each row came from.

Everything after the store runs in the TensorFlow graph (parallel map, no Python per
sample); randomness comes from ``tf.data.Dataset.random(seed)`` and stateless ops, so a seed
gives the same stream on every run.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .preprocess import clip_windows
from .store import ClipStore


@dataclass(frozen=True)
class Augmenter:
    """One recipe augmentation: the plugin's ``apply`` with its params."""

    name: str
    apply: Callable[..., Any]
    params: Any


def _to_layout(clip: Any, kind: str) -> Any:
    import tensorflow as tf

    if kind == "image":
        return tf.reduce_mean(clip, axis=0)
    if kind == "stack2d":
        t, h, w, c = clip.shape
        return tf.reshape(tf.transpose(clip, [1, 2, 0, 3]), [h, w, t * c])
    return clip


class _Graph:
    """The store as tensors, and the graph functions that cut windows from it."""

    def __init__(self, store: ClipStore, kind: str, frames: int):
        import tensorflow as tf

        self.frames_t = tf.constant(np.asarray(store.frames))
        self.offsets = tf.constant(store.offsets)
        self.lengths = tf.constant(store.lengths)
        self.kind, self.window = kind, frames

    def window_at(self, pos: Any, start: Any) -> Any:
        import tensorflow as tf

        idx = self.offsets[pos] + tf.math.floormod(start + tf.range(self.window, dtype=tf.int64),
                                                   self.lengths[pos])
        clip = tf.cast(tf.gather(self.frames_t, idx), tf.float32)
        return _to_layout(clip, self.kind)

    def random_window(self, pos: Any, seed: Any) -> Any:
        import tensorflow as tf

        room = tf.maximum(self.lengths[pos] - self.window + 1, 1)
        u = tf.random.stateless_uniform([], seed=seed)
        start = tf.cast(tf.floor(u * tf.cast(room, tf.float32)), tf.int64)
        return self.window_at(pos, tf.minimum(start, room - 1))


def _augment(x: Any, seed: Any, augmenters: Sequence[Augmenter], kind: str) -> Any:
    import tensorflow as tf

    for i, aug in enumerate(augmenters):
        sub = tf.random.experimental.stateless_fold_in(seed, i + 1)
        x = aug.apply(x, params=aug.params, seed=sub, layout=kind)
    return x


def _positions(positions: np.ndarray, groups: np.ndarray | None, seed: int) -> Any:
    """An endless stream of store positions: shuffled, or balanced across ``groups``."""
    import tensorflow as tf

    if groups is None:
        ds = tf.data.Dataset.from_tensor_slices(positions)
        return ds.shuffle(len(positions), seed=seed, reshuffle_each_iteration=True).repeat()
    parts = []
    for k, g in enumerate(sorted(set(groups.tolist()))):
        members = positions[groups == g]
        parts.append(tf.data.Dataset.from_tensor_slices(members)
                     .shuffle(len(members), seed=seed + k, reshuffle_each_iteration=True).repeat())
    return tf.data.Dataset.sample_from_datasets(parts, seed=seed, stop_on_empty_dataset=False)


def oversampled(positions: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Repeat samples of rare classes (cyclically) up to the count of the largest class."""
    out = []
    classes, counts = np.unique(labels, return_counts=True)
    for c in classes:
        members = positions[labels == c]
        out.append(np.resize(members, counts.max()))
    return np.sort(np.concatenate(out))


def train_dataset(store: ClipStore, positions: np.ndarray, labels: np.ndarray, *, kind: str, frames: int,
                  batch_size: int, seed: int, augmenters: Sequence[Augmenter] = (),
                  groups: np.ndarray | None = None, label_of: Callable[[Any], Any] | None = None) -> Any:
    """Endless (x, y) batches for ``model.fit`` (use ``steps_per_epoch``). ``labels`` is indexed
    by store position; ``groups`` (per entry of ``positions``) turns on balanced sampling."""
    import tensorflow as tf

    graph = _Graph(store, kind, frames)
    label_t = tf.constant(labels)
    seeds = tf.data.Dataset.random(seed=seed).batch(2)
    ds = tf.data.Dataset.zip((_positions(positions, groups, seed), seeds))

    def make(pos: Any, s: Any) -> Any:
        s = tf.cast(s, tf.int64)
        x = graph.random_window(pos, tf.random.experimental.stateless_fold_in(s, 0))
        x = _augment(x, s, augmenters, kind)
        y = label_t[pos]
        return x, (label_of(y) if label_of else y)

    ds = ds.map(make, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return ds.batch(batch_size, drop_remainder=False).prefetch(tf.data.AUTOTUNE)


def eval_rows(store: ClipStore, positions: np.ndarray, *, frames: int, stride: int) -> tuple[np.ndarray, np.ndarray]:
    """(owner position, window start) of every evaluation window, in sample order."""
    owners, starts = [], []
    for pos in positions:
        for start in clip_windows(int(store.lengths[pos]), frames, stride):
            owners.append(pos)
            starts.append(start)
    return np.asarray(owners, dtype=np.int64), np.asarray(starts, dtype=np.int64)


def eval_dataset(store: ClipStore, positions: np.ndarray, labels: np.ndarray | None, *, kind: str,
                 frames: int, stride: int | None, batch_size: int,
                 label_of: Callable[[Any], Any] | None = None) -> tuple[Any, np.ndarray]:
    """Deterministic windows of ``positions`` as a batched dataset, plus each row's owner."""
    import tensorflow as tf

    owners, starts = eval_rows(store, positions, frames=frames, stride=stride or frames)
    graph = _Graph(store, kind, frames)
    ds = tf.data.Dataset.from_tensor_slices((owners, starts))
    if labels is None:
        ds = ds.map(lambda p, s: graph.window_at(p, s), num_parallel_calls=tf.data.AUTOTUNE)
    else:
        label_t = tf.constant(labels)

        def make(p: Any, s: Any) -> Any:
            y = label_t[p]
            return graph.window_at(p, s), (label_of(y) if label_of else y)

        ds = ds.map(make, num_parallel_calls=tf.data.AUTOTUNE)
    return ds.batch(batch_size).prefetch(tf.data.AUTOTUNE), owners
