"""Random per-channel gain of an inertial window (T, C): each channel times N(1, sigma)."""

from __future__ import annotations

from pydantic import Field

from ._common import AugmentationParams, check_layout, gated, probability

MODALITIES = frozenset({"inertial"})
LAYOUTS = frozenset({"inertial"})


class Params(AugmentationParams):
    p: float = probability(1.0)
    sigma: float = Field(0.1, ge=0.0, description="standard deviation of the gain around 1")


def apply(x, *, params: Params, seed, layout: str):
    """``x`` with every channel scaled by its own random gain, with probability ``params.p``."""
    import tensorflow as tf

    check_layout("scaling", layout, LAYOUTS)

    def rescale(y, s):
        gain = tf.random.stateless_normal(tf.shape(y)[-1:], s, mean=1.0, stddev=params.sigma)
        return y * gain

    return gated(x, p=params.p, seed=seed, transform=rescale)
