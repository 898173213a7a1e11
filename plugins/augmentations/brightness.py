"""Random brightness change of an rgb sample: one offset added to every pixel of every frame.

Values are clipped back to 0..1 (``prepare`` scales rgb to 0..1).
"""

from __future__ import annotations

from pydantic import Field

from ._common import FRAME_LAYOUTS, AugmentationParams, check_layout, gated, probability

MODALITIES = frozenset({"rgb"})
LAYOUTS = FRAME_LAYOUTS - {"stack2d"}


class Params(AugmentationParams):
    p: float = probability(1.0)
    max_delta: float = Field(0.1, ge=0.0, le=1.0, description="largest offset, in 0..1 units")


def apply(x, *, params: Params, seed, layout: str):
    """``x`` plus a random offset in [-max_delta, max_delta] with probability ``params.p``."""
    import tensorflow as tf

    check_layout("brightness", layout, LAYOUTS)

    def brighten(y, s):
        delta = tf.random.stateless_uniform([], s, -params.max_delta, params.max_delta)
        return tf.clip_by_value(y + delta, 0.0, 1.0)

    return gated(x, p=params.p, seed=seed, transform=brighten)
