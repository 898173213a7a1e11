"""Random translation of the whole sample by whole pixels (Embedded-Gait used 3-5 px).

One offset per sample, drawn uniformly from -max_px..max_px on each axis; uncovered pixels
become 0. Flow vectors are unchanged by a translation.
"""

from __future__ import annotations

from pydantic import Field

from ._common import FRAME_LAYOUTS, IMAGE_MODALITIES, AugmentationParams, affine, check_layout, probability

MODALITIES = IMAGE_MODALITIES
LAYOUTS = FRAME_LAYOUTS


class Params(AugmentationParams):
    p: float = probability(1.0)
    max_px: int = Field(5, ge=0, description="largest shift in pixels, on each axis")


def apply(x, *, params: Params, seed, layout: str):
    """``x`` shifted by a random whole-pixel (dx, dy) with probability ``params.p``."""
    import tensorflow as tf

    check_layout("shift", layout, LAYOUTS)

    def draw(s):
        offset = tf.random.stateless_uniform([2], s, -params.max_px, params.max_px + 1, dtype=tf.int32)
        return tf.eye(2), tf.cast(offset, tf.float32)

    return affine(x, layout=layout, p=params.p, seed=seed, draw=draw)
