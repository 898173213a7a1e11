"""Horizontal mirror of the whole sample; on optical flow the x-flow changes sign.

Mirroring a flow field also reverses its horizontal motion, so the x channel of every flow
frame is negated (in ``stack2d`` the even channels 0, 2, 4 ..., otherwise channel 0).
"""

from __future__ import annotations

from ._common import (
    FRAME_LAYOUTS,
    IMAGE_MODALITIES,
    AugmentationParams,
    check_layout,
    is_flow,
    per_sample,
    probability,
)

MODALITIES = IMAGE_MODALITIES
LAYOUTS = FRAME_LAYOUTS


class Params(AugmentationParams):
    p: float = probability(0.5)


def mirror(frames, _seed=None):
    """Frames (N, H, W, C) mirrored left-right, x-flow negated if they are flow."""
    import tensorflow as tf

    out = tf.reverse(frames, axis=[2])
    return out * tf.constant([-1.0, 1.0]) if is_flow(frames) else out


def apply(x, *, params: Params, seed, layout: str):
    """``x`` mirrored with probability ``params.p``."""
    check_layout("flip", layout, LAYOUTS)
    return per_sample(x, layout=layout, p=params.p, seed=seed, fn=mirror)
