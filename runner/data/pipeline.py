"""The tf.data input pipeline over a ClipStore.

Training: sample positions, shuffled (seeded, reshuffled every epoch) or drawn balanced
across classes / conditions, endless (``steps_per_epoch`` bounds an epoch) -> a random
window of ``frames`` steps (temporal crop) -> the architecture's layout -> augmentations ->
batch -> prefetch. Evaluation: every deterministic window (``clip.stride`` apart) of every
sample, in order, with ``owner`` saying which sample each row came from.

Everything after the store runs in the TensorFlow graph (parallel map); a store in RAM is
sliced there, a store on disk is read by positional reads of just the windows' frames, a
batch of ``READ_BATCH`` windows per Python call (which releases the GIL while it reads), the
calls in parallel. Randomness comes from ``tf.data.Dataset.random(seed)`` and stateless ops, so a seed
gives the same stream on every run.
"""

from __future__ import annotations

import os
import weakref
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


def _pad(clip: Any, window: int, pad: str) -> Any:
    """A clip of n <= ``window`` frames filled up to ``window``: looped, its last frame repeated
    (``edge``) or zero frames (``zero``). ``error`` stores are checked beforehand (the data
    stage): no clip reaching this is short, and it is returned as is."""
    import tensorflow as tf

    n = tf.shape(clip, out_type=tf.int64)[0]
    if pad == "error":
        with tf.control_dependencies([tf.debugging.assert_equal(n, tf.constant(window, tf.int64), message=(
                "a clip is shorter than data.clip.frames; the data stage should have refused it"))]):
            return tf.identity(clip)
    steps = tf.range(window, dtype=tf.int64)
    if pad == "zero":
        return tf.concat([clip, tf.zeros(tf.concat([[window - n], tf.shape(clip, out_type=tf.int64)[1:]], 0),
                                          clip.dtype)], 0)
    if pad == "loop":
        return tf.gather(clip, tf.math.floormod(steps, n))
    return tf.gather(clip, tf.minimum(steps, n - 1))


READ_BATCH = 32  # windows per read call from a store on disk (bench/data_scale.py; see _disk_reader)


class _Windows:
    """Cuts windows of ``window`` frames from a store: the frames from ``start`` (fewer if the
    clip ends first), padded (``data.clip.pad``), cast to float32, in the layout. For the
    ``image`` layout a short clip is averaged as it is (a mean needs no padding).

    ``cut`` turns a dataset of ``(pos, start, *rest)`` into one of ``then(window, pos, *rest)``.
    A store in RAM is sliced per window in the graph. A store on disk is read ``READ_BATCH``
    windows per call (first frames and counts computed for the whole batch at once, one
    positional read per window, the GIL released while it reads), the calls running in
    parallel; then every window gets exactly the ops of the RAM path, so both give the same
    values bit for bit."""

    def __init__(self, store: ClipStore, kind: str, window: int, pad: str):
        import tensorflow as tf

        self.offsets = tf.constant(store.offsets)
        self.lengths = tf.constant(store.lengths)
        self.kind, self.window, self.pad = kind, window, pad
        self.frame_shape = tuple(store.frames.shape[1:])
        self.in_ram = store.folder is None
        if self.in_ram:
            frames_t = tf.constant(np.asarray(store.frames))
            self.slice = lambda first, count: frames_t[first: first + count]
        else:
            self.read_batch = _disk_reader(store, window)

    def span(self, pos: Any, start: Any) -> tuple[Any, Any]:
        """(first frame in the store, frame count) of windows at ``start`` of samples ``pos``
        (scalars or vectors alike)."""
        import tensorflow as tf

        count = tf.minimum(tf.gather(self.lengths, pos) - start, self.window)
        return tf.gather(self.offsets, pos) + start, count

    def finish(self, clip: Any) -> Any:
        import tensorflow as tf

        clip = tf.cast(clip, tf.float32)
        if self.kind != "image":
            clip = tf.ensure_shape(_pad(clip, self.window, self.pad), [self.window, *self.frame_shape])
        return _to_layout(clip, self.kind)

    def random_start(self, pos: Any, seed: Any) -> Any:
        import tensorflow as tf

        room = tf.maximum(self.lengths[pos] - self.window + 1, 1)
        u = tf.random.stateless_uniform([], seed=seed)
        start = tf.cast(tf.floor(u * tf.cast(room, tf.float32)), tf.int64)
        return tf.minimum(start, room - 1)

    def cut(self, ds: Any, then: Callable[..., Any], where: Callable[..., Any] | None = None) -> Any:
        """Each element ``(pos, start, *rest)`` of ``ds`` (or ``where(*element)``, if given)
        becomes ``then(window, pos, *rest)``, in order."""
        import tensorflow as tf

        parallel = {"num_parallel_calls": tf.data.AUTOTUNE, "deterministic": True}
        if self.in_ram:
            def one(*element: Any) -> Any:
                pos, start, *rest = where(*element) if where else element
                first, count = self.span(pos, start)
                return then(self.finish(self.slice(first, count)), pos, *rest)

            return ds.map(one, **parallel)

        def read(pos: Any, start: Any, *rest: Any) -> Any:
            first, count = self.span(pos, start)
            return (self.read_batch(first, count), count, pos, *rest)

        def each(block: Any, count: Any, pos: Any, *rest: Any) -> Any:
            return then(self.finish(block[:count]), pos, *rest)

        ds = (ds.map(where, **parallel) if where else ds).batch(READ_BATCH)
        return ds.map(read, **parallel).unbatch().map(each, **parallel)


def _disk_reader(store: ClipStore, window: int) -> Callable[[Any, Any], Any]:
    """A batch of windows from a store on disk: ``counts[i]`` frames from frame ``firsts[i]``
    into row ``i`` of a (batch, ``window``, frame...) array (rows past their count unset).

    One Python call per batch, not per window: the call's fixed cost (the GIL, NumPy
    conversions) made the per-window reader 0.17-0.39x of slicing in RAM. ``pread`` into the
    array rather than slicing the memory map: pages read this way stay in the OS page cache
    (shared, reclaimable) instead of counting in this process's resident memory, so memory
    does not grow as an epoch touches the whole store.
    """
    import tensorflow as tf

    frame_shape, dtype = store.frames.shape[1:], store.frames.dtype
    frame_bytes = int(np.prod(frame_shape)) * dtype.itemsize
    fd = os.open(store.folder / "frames.bin", os.O_RDONLY)  # type: ignore[operator]
    weakref.finalize(store, os.close, fd)

    def read(firsts: np.ndarray, counts: np.ndarray) -> np.ndarray:
        out = np.empty((len(firsts), window, *frame_shape), dtype)
        for row, first, count in zip(out, firsts.tolist(), counts.tolist(), strict=True):
            part = row[:count]
            if os.preadv(fd, [part.data.cast("B")], first * frame_bytes) != part.nbytes:
                raise OSError(f"{store.folder}: frames.bin is shorter than its index; delete the store")
        return out

    def graph_read(firsts: Any, counts: Any) -> Any:
        out = tf.numpy_function(read, [firsts, counts], tf.as_dtype(dtype), stateful=False)
        return tf.ensure_shape(out, [None, window, *frame_shape])

    return graph_read


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
                  batch_size: int, seed: int, augmenters: Sequence[Augmenter] = (), pad: str = "error",
                  groups: np.ndarray | None = None, label_of: Callable[[Any], Any] | None = None) -> Any:
    """Endless (x, y) batches for ``model.fit`` (use ``steps_per_epoch``). ``labels`` is indexed
    by store position; ``groups`` (per entry of ``positions``) turns on balanced sampling."""
    import tensorflow as tf

    graph = _Windows(store, kind, frames, pad)
    label_t = tf.constant(labels)
    seeds = tf.data.Dataset.random(seed=seed).batch(2)
    ds = tf.data.Dataset.zip((_positions(positions, groups, seed), seeds))

    def where(pos: Any, s: Any) -> Any:
        s = tf.cast(s, tf.int64)
        return pos, graph.random_start(pos, tf.random.experimental.stateless_fold_in(s, 0)), s

    def then(x: Any, pos: Any, s: Any) -> Any:
        x = _augment(x, s, augmenters, kind)
        y = label_t[pos]
        return x, (label_of(y) if label_of else y)

    ds = graph.cut(ds, then, where)
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
                 frames: int, stride: int | None, batch_size: int, pad: str = "error",
                 label_of: Callable[[Any], Any] | None = None) -> tuple[Any, np.ndarray]:
    """Deterministic windows of ``positions`` as a batched dataset, plus each row's owner."""
    import tensorflow as tf

    owners, starts = eval_rows(store, positions, frames=frames, stride=stride or frames)
    graph = _Windows(store, kind, frames, pad)
    ds = tf.data.Dataset.from_tensor_slices((owners, starts))
    if labels is None:
        ds = graph.cut(ds, lambda x, p: x)
    else:
        label_t = tf.constant(labels)

        def then(x: Any, p: Any) -> Any:
            y = label_t[p]
            return x, (label_of(y) if label_of else y)

        ds = graph.cut(ds, then)
    return ds.batch(batch_size).prefetch(tf.data.AUTOTUNE), owners
