"""Random temporal crop of a clip, resampled back to the clip's length T.

A window of ``round(f * T)`` consecutive frames, f uniform in [min_fraction, 1], starts at
a random frame and is stretched to T frames by repeating frames (nearest neighbour), so
the sample keeps its shape like every other augmentation and the pipeline needs no
longer clips. The effect is a random crop plus a random slow-down of up to
``1 / min_fraction``. Silhouette and rgb clips only: repeating optical-flow frames would
misstate the motion between them (flow samples get their variety from the several
windows per sequence that ``prepare`` makes).
"""

from __future__ import annotations

from pydantic import Field

from ._common import AugmentationParams, check_layout, per_sample, probability

MODALITIES = frozenset({"silhouette", "rgb"})
LAYOUTS = frozenset({"clip3d", "frame_set", "sequence"})


class Params(AugmentationParams):
    p: float = probability(1.0)
    min_fraction: float = Field(0.7, gt=0.0, le=1.0, description="shortest window, as a fraction of T")


def apply(x, *, params: Params, seed, layout: str):
    """``x`` (T, H, W, C) replaced by a random resampled window with probability ``params.p``."""
    import tensorflow as tf

    check_layout("temporal_crop", layout, LAYOUTS)

    def crop(frames, s):
        length_seed, start_seed = tf.unstack(tf.random.experimental.stateless_split(s, num=2))
        total = tf.shape(frames)[0]
        fraction = tf.random.stateless_uniform([], length_seed, params.min_fraction, 1.0)
        length = tf.maximum(1, tf.cast(tf.round(fraction * tf.cast(total, tf.float32)), tf.int32))
        start = tf.random.stateless_uniform([], start_seed, 0, total - length + 1, dtype=tf.int32)
        return tf.gather(frames, start + tf.range(total) * length // total)

    return per_sample(x, layout=layout, p=params.p, seed=seed, fn=crop)
