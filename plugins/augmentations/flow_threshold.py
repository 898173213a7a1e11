"""Zero optical-flow vectors whose size is outside [low, high] (Embedded-Gait, p = 0.5).

Units are pixels per frame at the model's input size (what ``prepare`` produces).
Embedded-Gait zeroed each flow *component* whose absolute value, in the stored integers
(flow x compressFactor), was outside [50, 2300]; with a compressFactor of 100 that is
[0.5, 23] px, the defaults here. ``norm: magnitude`` (default) tests each vector's length,
``norm: component`` each x and y value on its own, as Embedded-Gait did.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from gaitrun.errors import PluginError

from ._common import FRAME_LAYOUTS, AugmentationParams, check_layout, is_flow, per_sample, probability

MODALITIES = frozenset({"optical_flow"})
LAYOUTS = FRAME_LAYOUTS


class Params(AugmentationParams):
    p: float = probability(0.5)
    low: float = Field(0.5, ge=0.0, description="smallest kept size, pixels per frame")
    high: float = Field(23.0, gt=0.0, description="largest kept size, pixels per frame")
    norm: Literal["magnitude", "component"] = Field(
        "magnitude", description="test each vector's length, or each x/y component")

    @model_validator(mode="after")
    def _ordered(self) -> Params:
        if self.low > self.high:
            raise ValueError(f"low ({self.low}) must not exceed high ({self.high})")
        return self


def apply(x, *, params: Params, seed, layout: str):
    """``x`` with out-of-range flow zeroed, with probability ``params.p``."""
    import tensorflow as tf

    check_layout("flow_threshold", layout, LAYOUTS)

    def threshold(frames, _seed):
        if not is_flow(frames):
            raise PluginError(f"augmentation 'flow_threshold' needs optical flow (2 channels), got frames "
                              f"of shape {frames.shape}", family="augmentations", plugin="flow_threshold")
        size = tf.norm(frames, axis=-1, keepdims=True) if params.norm == "magnitude" else tf.abs(frames)
        keep = (size >= params.low) & (size <= params.high)
        return frames * tf.cast(keep, frames.dtype)

    return per_sample(x, layout=layout, p=params.p, seed=seed, fn=threshold)
