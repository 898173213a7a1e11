"""Random frame dropout: each frame of a clip is dropped with probability ``rate``.

The sample keeps its shape: a dropped frame is either zeroed (``fill: zero``) or replaced
by a random kept frame (``fill: repeat``, the default -- for an order-free frame set such as
GaitSet's this equals removing the frame). One random frame is always kept.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from ._common import CLIP_LAYOUTS, IMAGE_MODALITIES, AugmentationParams, check_layout, per_sample, probability

MODALITIES = IMAGE_MODALITIES
LAYOUTS = CLIP_LAYOUTS


class Params(AugmentationParams):
    p: float = probability(1.0)
    rate: float = Field(0.2, ge=0.0, lt=1.0, description="probability that a frame is dropped")
    fill: Literal["repeat", "zero"] = Field("repeat", description="what replaces a dropped frame")


def apply(x, *, params: Params, seed, layout: str):
    """``x`` with random frames dropped, with probability ``params.p``."""
    import tensorflow as tf

    check_layout("frame_dropout", layout, LAYOUTS)

    def drop(frames, s):
        anchor_seed, drop_seed, pick_seed = tf.unstack(tf.random.experimental.stateless_split(s, num=3))
        total = tf.shape(frames)[0]
        anchor = tf.random.stateless_uniform([], anchor_seed, 0, total, dtype=tf.int32)
        positions = tf.range(total)
        keep = (tf.random.stateless_uniform([total], drop_seed) >= params.rate) | (positions == anchor)
        if params.fill == "zero":
            return frames * tf.cast(keep, frames.dtype)[:, tf.newaxis, tf.newaxis, tf.newaxis]
        kept = tf.cast(tf.where(keep)[:, 0], tf.int32)
        picks = tf.random.stateless_uniform([total], pick_seed, 0, tf.size(kept), dtype=tf.int32)
        return tf.gather(frames, tf.where(keep, positions, tf.gather(kept, picks)))

    return per_sample(x, layout=layout, p=params.p, seed=seed, fn=drop)
