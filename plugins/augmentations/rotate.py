"""Random rotation about the image centre by up to max_deg degrees either way.

One angle per sample; uncovered pixels become 0 and flow vectors turn with the image.
"""

from __future__ import annotations

import math

from pydantic import Field

from ._common import FRAME_LAYOUTS, IMAGE_MODALITIES, AugmentationParams, affine, check_layout, probability

MODALITIES = IMAGE_MODALITIES
LAYOUTS = FRAME_LAYOUTS


class Params(AugmentationParams):
    p: float = probability(1.0)
    max_deg: float = Field(10.0, ge=0.0, le=180.0, description="largest rotation in degrees")


def apply(x, *, params: Params, seed, layout: str):
    """``x`` rotated by a random angle with probability ``params.p``."""
    import tensorflow as tf

    check_layout("rotate", layout, LAYOUTS)
    limit = math.radians(params.max_deg)

    def draw(s):
        angle = tf.random.stateless_uniform([], s, -limit, limit)
        cos, sin = tf.cos(angle), tf.sin(angle)
        return tf.stack([tf.stack([cos, -sin]), tf.stack([sin, cos])]), tf.zeros([2])

    return affine(x, layout=layout, p=params.p, seed=seed, draw=draw)
