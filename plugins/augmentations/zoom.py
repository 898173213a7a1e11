"""Random zoom in or out about the image centre (Embedded-Gait used 4 %).

One scale per sample, uniform in [1 - max, 1 + max], the same on both axes; uncovered
pixels become 0 and flow vectors are scaled with the image.
"""

from __future__ import annotations

from pydantic import Field

from ._common import FRAME_LAYOUTS, IMAGE_MODALITIES, AugmentationParams, affine, check_layout, probability

MODALITIES = IMAGE_MODALITIES
LAYOUTS = FRAME_LAYOUTS


class Params(AugmentationParams):
    p: float = probability(1.0)
    max: float = Field(0.04, ge=0.0, lt=1.0, description="largest relative change of size, e.g. 0.04")


def apply(x, *, params: Params, seed, layout: str):
    """``x`` zoomed by a random factor with probability ``params.p``."""
    import tensorflow as tf

    check_layout("zoom", layout, LAYOUTS)

    def draw(s):
        scale = tf.random.stateless_uniform([], s, 1.0 - params.max, 1.0 + params.max)
        return scale * tf.eye(2), tf.zeros([2])

    return affine(x, layout=layout, p=params.p, seed=seed, draw=draw)
