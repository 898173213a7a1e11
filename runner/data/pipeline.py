"""The tf.data input pipeline over a ClipStore.

Training: sample positions, shuffled (seeded, reshuffled every epoch) or drawn balanced
across classes / conditions, endless (``steps_per_epoch`` bounds an epoch) -> batch -> a
random window of ``frames`` steps (temporal crop) per position -> the architecture's layout
-> augmentations -> prefetch. Evaluation: every deterministic window (``clip.stride`` apart)
of every sample, in order, with ``owner`` saying which sample each row came from.

Everything after the store runs in the TensorFlow graph, one batch per call of a parallel
map: a store in RAM is gathered there, a store on disk is read by positional reads of just
the windows' frames, one Python call per batch (which releases the GIL while it reads); both
then give every window the same ops, so they give the same values bit for bit. Randomness
comes from ``tf.data.Dataset.random(seed)`` and stateless ops, so a seed gives the same
stream on every run.
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


class _Windows:
    """Cuts windows of ``window`` frames from a store: the frames from ``start`` (fewer if the
    clip ends first), padded (``data.clip.pad``), cast to float32, in the layout. For the
    ``image`` layout a short clip is averaged as it is (a mean needs no padding).

    Whole batches at a time: the first frames and counts of a batch's windows are computed at
    once, its frames read in one call into a (batch, ``window``, frame...) block (sliced from
    the store in RAM, or read from the store on disk by one Python call per batch), then every
    window gets the same ops, whichever the store, so both give the same values bit for bit."""

    def __init__(self, store: ClipStore, kind: str, window: int, pad: str):
        import tensorflow as tf

        self.offsets = tf.constant(store.offsets)
        self.lengths = tf.constant(store.lengths)
        self.kind, self.window, self.pad = kind, window, pad
        self.frame_shape = tuple(store.frames.shape[1:])
        self.read_block = _ram_reader(store, window) if store.folder is None else _disk_reader(store, window)

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

    def batches(self, ds: Any, batch_size: int, *, start_of: Callable[[Any, Any], Any] | None = None,
                augment: Callable[[Any, Any, Any], Any] | None = None,
                target: Callable[[Any], Any] | None = None) -> Any:
        """Batches of windows from the elements ``(pos, b)`` of ``ds``, in order: the window
        of sample ``pos`` at ``start_of(pos, b)``, or at ``b`` without ``start_of``; then
        ``augment(window, pos, b)`` per window; ``(windows, target(pos batch))`` with ``target``."""
        import tensorflow as tf

        def make(pos: Any, b: Any) -> Any:
            starts = b if start_of is None else tf.map_fn(lambda e: start_of(*e), (pos, b),
                                                          fn_output_signature=tf.int64)
            count = tf.minimum(tf.gather(self.lengths, pos) - starts, self.window)
            block = self.read_block(tf.gather(self.offsets, pos) + starts, count)

            def one(e: Any) -> Any:
                frames, n, p, bi = e
                x = self.finish(frames[:n])
                return augment(x, p, bi) if augment else x

            x = tf.map_fn(one, (block, count, pos, b), fn_output_signature=tf.float32)
            return x if target is None else (x, target(pos))

        ds = ds.batch(batch_size).map(make, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        # no autotuning thread: with it, deleting an iterator that ran for minutes (the end of
        # every fit) waited up to a minute for it (31 s after a 36-epoch fit); without it, AUTOTUNE
        # means one call per core, and prefetching stays on
        options = tf.data.Options()
        options.autotune.enabled = False
        return ds.prefetch(tf.data.AUTOTUNE).with_options(options)


def _ram_reader(store: ClipStore, window: int) -> Callable[[Any, Any], Any]:
    """A batch of windows from a store in RAM: ``counts[i]`` frames from frame ``firsts[i]``
    in row ``i`` of a (batch, ``window``, frame...) block (rows past their count: the last
    frame again), gathered in the graph."""
    import tensorflow as tf

    frames_t = tf.constant(np.asarray(store.frames))
    steps = tf.range(window, dtype=tf.int64)

    @tf.autograph.experimental.do_not_convert  # plain ops; AutoGraph trips over the closure
    def read(firsts: Any, counts: Any) -> Any:
        return tf.gather(frames_t, firsts[:, None] + tf.minimum(steps[None, :], counts[:, None] - 1))

    return read


def _disk_reader(store: ClipStore, window: int) -> Callable[[Any, Any], Any]:
    """A batch of windows from a store on disk: ``counts[i]`` frames from frame ``firsts[i]``
    into row ``i`` of a (batch, ``window``, frame...) block (rows past their count unset).

    One Python call per batch, not per window: the call's fixed cost (the GIL, NumPy
    conversions) made a per-window reader 0.17-0.39x of slicing in RAM. ``pread`` into the
    block rather than slicing the memory map: pages read this way stay in the OS page cache
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

    @tf.autograph.experimental.do_not_convert
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
    by store position; ``groups`` (per entry of ``positions``) turns on balanced sampling;
    ``label_of`` makes the fit target of a batch of labels."""
    import tensorflow as tf

    graph = _Windows(store, kind, frames, pad)
    label_t = tf.constant(labels)
    seeds = tf.data.Dataset.random(seed=seed).batch(2)
    ds = tf.data.Dataset.zip((_positions(positions, groups, seed), seeds))

    def start_of(pos: Any, s: Any) -> Any:
        return graph.random_start(pos, tf.random.experimental.stateless_fold_in(tf.cast(s, tf.int64), 0))

    def target(pos: Any) -> Any:
        y = tf.gather(label_t, pos)
        return label_of(y) if label_of else y

    return graph.batches(ds, batch_size, start_of=start_of, target=target,
                         augment=lambda x, pos, s: _augment(x, tf.cast(s, tf.int64), augmenters, kind))


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
        return graph.batches(ds, batch_size), owners
    label_t = tf.constant(labels)

    def target(pos: Any) -> Any:
        y = tf.gather(label_t, pos)
        return label_of(y) if label_of else y

    return graph.batches(ds, batch_size, target=target), owners
