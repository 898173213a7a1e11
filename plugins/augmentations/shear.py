"""Random horizontal shear about the image centre: x moves by factor * (y - centre).

One factor per sample, uniform in [-max, max]; uncovered pixels become 0 and flow vectors
are sheared with the image.
"""

from __future__ import annotations

from pydantic import Field

from ._common import FRAME_LAYOUTS, IMAGE_MODALITIES, AugmentationParams, affine, check_layout, probability

MODALITIES = IMAGE_MODALITIES
LAYOUTS = FRAME_LAYOUTS


class Params(AugmentationParams):
    p: float = probability(1.0)
    max: float = Field(0.1, ge=0.0, le=1.0, description="largest shear factor (x shift per row)")


def apply(x, *, params: Params, seed, layout: str):
    """``x`` sheared by a random factor with probability ``params.p``."""
    import tensorflow as tf

    check_layout("shear", layout, LAYOUTS)

    def draw(s):
        factor = tf.random.stateless_uniform([], s, -params.max, params.max)
        return tf.stack([tf.stack([1.0, factor]), tf.constant([0.0, 1.0])]), tf.zeros([2])

    return affine(x, layout=layout, p=params.p, seed=seed, draw=draw)
