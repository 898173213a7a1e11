"""Random erasing: one rectangle set to 0 at the same place in every frame of the sample.

The rectangle is ``size`` times the frame's height and width, centred anywhere in the
frame (it may be clipped by the border). On optical flow 0 means "no motion".
"""

from __future__ import annotations

from pydantic import Field

from ._common import (
    FRAME_LAYOUTS,
    IMAGE_MODALITIES,
    AugmentationParams,
    check_layout,
    per_sample,
    probability,
)

MODALITIES = IMAGE_MODALITIES
LAYOUTS = FRAME_LAYOUTS


class Params(AugmentationParams):
    p: float = probability(0.5)
    size: float = Field(0.25, gt=0.0, le=1.0, description="rectangle side as a fraction of the frame's")


def apply(x, *, params: Params, seed, layout: str):
    """``x`` with one random rectangle zeroed, with probability ``params.p``."""
    import tensorflow as tf

    check_layout("cutout", layout, LAYOUTS)

    def erase(frames, s):
        extent = tf.cast(tf.shape(frames)[1:3], tf.float32)  # (H, W)
        centre = tf.random.stateless_uniform([2], s) * extent
        half = params.size * extent / 2.0
        rows = tf.abs(tf.range(extent[0]) - centre[0]) < half[0]
        cols = tf.abs(tf.range(extent[1]) - centre[1]) < half[1]
        inside = tf.logical_and(rows[:, tf.newaxis], cols[tf.newaxis, :])
        return frames * tf.cast(~inside, frames.dtype)[tf.newaxis, :, :, tf.newaxis]

    return per_sample(x, layout=layout, p=params.p, seed=seed, fn=erase)
