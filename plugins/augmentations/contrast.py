"""Random contrast change of an rgb sample: every frame's channels stretched about their mean.

One factor per sample, uniform in [lower, upper], applied to each frame like
``tf.image.adjust_contrast``; values are clipped back to 0..1.
"""

from __future__ import annotations

from pydantic import Field, model_validator

from ._common import FRAME_LAYOUTS, AugmentationParams, check_layout, per_sample, probability

MODALITIES = frozenset({"rgb"})
LAYOUTS = FRAME_LAYOUTS - {"stack2d"}


class Params(AugmentationParams):
    p: float = probability(1.0)
    lower: float = Field(0.8, ge=0.0, description="smallest contrast factor (1 = unchanged)")
    upper: float = Field(1.2, ge=0.0, description="largest contrast factor")

    @model_validator(mode="after")
    def _ordered(self) -> Params:
        if self.lower > self.upper:
            raise ValueError(f"lower ({self.lower}) must not exceed upper ({self.upper})")
        return self


def apply(x, *, params: Params, seed, layout: str):
    """``x`` with its contrast scaled by a random factor with probability ``params.p``."""
    import tensorflow as tf

    check_layout("contrast", layout, LAYOUTS)

    def stretch(frames, s):
        factor = tf.random.stateless_uniform([], s, params.lower, params.upper)
        mean = tf.reduce_mean(frames, axis=[1, 2], keepdims=True)
        return tf.clip_by_value((frames - mean) * factor + mean, 0.0, 1.0)

    return per_sample(x, layout=layout, p=params.p, seed=seed, fn=stretch)
