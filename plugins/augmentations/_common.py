"""Shared parts of the built-in augmentations: the params base, the probability gate, the
frame view of every layout and the affine warp.

An augmentation gets ONE sample in its architecture's layout and a shape-[2] seed. It works
on the sample's *frame view* (N, H, W, C): ``image`` is one frame, ``stack2d`` (H, W, 2T)
is T optical-flow frames (H, W, 2), the clip layouts (T, H, W, C) already are frames. One
random transform is drawn per sample and applied to all its frames, so a walking sequence
moves as a whole. A frame with 2 channels is optical flow (x, y): flow is the only
2-channel modality (silhouettes have 1, rgb 3), so spatial transforms also move its
vectors. Only stateless random ops are used: the same seed gives the same result.

TensorFlow is imported inside the functions, so that validating a recipe stays light.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from gaitrun.errors import PluginError

IMAGE_MODALITIES = frozenset({"silhouette", "optical_flow", "rgb"})
FRAME_LAYOUTS = frozenset({"image", "stack2d", "clip3d", "frame_set", "sequence"})
CLIP_LAYOUTS = FRAME_LAYOUTS - {"image"}

Tensor = Any  # tf.Tensor, kept untyped so that this module does not import TensorFlow
FrameFn = Callable[[Tensor, Tensor], Tensor]  # (frames (N, H, W, C), seed) -> frames


class AugmentationParams(BaseModel):
    """Base of every augmentation's ``Params``: unknown keys are errors, values are frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def probability(default: float) -> Any:
    """The ``p`` field every augmentation has, with its own default."""
    return Field(default, ge=0.0, le=1.0, description="probability of applying it to a sample")


def check_layout(name: str, layout: str, allowed: frozenset[str]) -> None:
    """Refuse a layout the augmentation cannot transform (raised when the pipeline is traced)."""
    if layout not in allowed:
        raise PluginError(f"augmentation '{name}' does not work on the '{layout}' layout (it supports "
                          f"{', '.join(sorted(allowed))}); remove it from 'augment:' or change the "
                          "architecture", family="augmentations", plugin=name)


def is_flow(frames: Tensor) -> bool:
    """Whether a frame view holds optical flow, i.e. has exactly 2 (static) channels."""
    return frames.shape[-1] == 2


def gated(x: Tensor, *, p: float, seed: Tensor, transform: FrameFn) -> Tensor:
    """``transform(x, sub_seed)`` with probability ``p``, else ``x``; both decided by ``seed``."""
    import tensorflow as tf

    if p <= 0.0:
        return x
    gate_seed, op_seed = tf.unstack(tf.random.experimental.stateless_split(seed, num=2))
    if p >= 1.0:
        return transform(x, op_seed)
    chosen = tf.random.stateless_uniform([], gate_seed) < p
    return tf.cond(chosen, lambda: transform(x, op_seed), lambda: x)


def on_frames(x: Tensor, layout: str, fn: Callable[[Tensor], Tensor]) -> Tensor:
    """``fn`` applied to the frame view of ``x``, returned in ``x``'s layout and shape."""
    import tensorflow as tf

    if layout == "image":
        out = fn(x[tf.newaxis])[0]
    elif layout == "stack2d":  # (H, W, 2T) <-> (T, H, W, 2), x/y interleaved per frame
        height, width = tf.shape(x)[0], tf.shape(x)[1]
        frames = tf.transpose(tf.reshape(x, [height, width, -1, 2]), [2, 0, 1, 3])
        out = tf.reshape(tf.transpose(fn(frames), [1, 2, 0, 3]), tf.shape(x))
    else:
        out = fn(x)
    return tf.ensure_shape(out, x.shape)


def per_sample(x: Tensor, *, layout: str, p: float, seed: Tensor, fn: FrameFn) -> Tensor:
    """With probability ``p``, ``fn(frames, seed)`` on the frame view of the sample ``x``."""
    return gated(x, p=p, seed=seed, transform=lambda y, s: on_frames(y, layout, lambda f: fn(f, s)))


def warp(frames: Tensor, matrix: Tensor, offset: Tensor) -> Tensor:
    """Move every frame's pixel (x, y) to ``matrix @ ((x, y) - c) + c + offset``, c the centre.

    Bilinear sampling, zeros outside. Optical-flow vectors v become ``matrix @ v`` (a zoom
    scales the motion, a rotation turns it).
    """
    import tensorflow as tf

    size = tf.shape(frames)[1:3]
    centre = (tf.cast(tf.reverse(size, [0]), tf.float32) - 1.0) / 2.0  # (x, y)
    inverse = tf.linalg.inv(matrix)  # the op maps each output pixel back to its input pixel
    shift = centre - tf.linalg.matvec(inverse, centre + offset)
    row = tf.concat([inverse[0], shift[:1], inverse[1], shift[1:], tf.zeros([2])], axis=0)
    out = tf.raw_ops.ImageProjectiveTransformV3(
        images=frames, transforms=row[tf.newaxis], output_shape=size, fill_value=0.0,
        interpolation="BILINEAR", fill_mode="CONSTANT")
    return tf.einsum("ij,nhwj->nhwi", matrix, out) if is_flow(frames) else out


def affine(x: Tensor, *, layout: str, p: float, seed: Tensor,
           draw: Callable[[Tensor], tuple[Tensor, Tensor]]) -> Tensor:
    """With probability ``p``, warp all frames with one map ``draw(seed) -> (matrix, offset)``."""
    return per_sample(x, layout=layout, p=p, seed=seed, fn=lambda f, s: warp(f, *draw(s)))
