"""Gaussian noise added to an inertial window (T, C), independently per sample and channel."""

from __future__ import annotations

from pydantic import Field

from ._common import AugmentationParams, check_layout, gated, probability

MODALITIES = frozenset({"inertial"})
LAYOUTS = frozenset({"inertial"})


class Params(AugmentationParams):
    p: float = probability(1.0)
    sigma: float = Field(0.05, ge=0.0, description="standard deviation of the noise, in signal units")


def apply(x, *, params: Params, seed, layout: str):
    """``x`` plus N(0, sigma) noise with probability ``params.p``."""
    import tensorflow as tf

    check_layout("jitter", layout, LAYOUTS)

    def add_noise(y, s):
        return y + tf.random.stateless_normal(tf.shape(y), s, stddev=params.sigma)

    return gated(x, p=params.p, seed=seed, transform=add_noise)
