"""Invert intensities (x -> 1 - x) with probability p (example third-party augmentation)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

MODALITIES = frozenset({"rgb", "silhouette"})


class Params(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    p: float = Field(0.5, ge=0, le=1, description="probability")


def apply(x, *, params: Params, seed, layout):
    import tensorflow as tf

    draw = tf.random.stateless_uniform([], seed=seed)
    return tf.cond(draw < params.p, lambda: 1.0 - x, lambda: x)
