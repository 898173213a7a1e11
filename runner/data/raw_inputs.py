"""Raw adapter output -> model inputs for serving, without TensorFlow: ``to_clip`` (as the clip
store does, in the modality's storage dtype), then the evaluation windows in the model's layout.

Training and evaluation cut windows with tf.data (``gaitrun.data.pipeline.eval_dataset``); a
server of an ONNX model should not import TensorFlow (seconds, and memory) to answer a raw
upload, so this is the same cut in NumPy. ``tests/test_raw_inputs.py`` checks that both give the
same arrays for every layout.
"""

from __future__ import annotations

import numpy as np


def model_inputs(raw: np.ndarray, *, modality: str, kind: str, frames: int, size: tuple[int, int],
                 stride: int | None = None, source: str = "sample") -> np.ndarray:
    """(windows, *input_shape) float32 for one decoded sample ``raw``, windows ``stride`` apart
    (default ``frames``) plus one ending at the last frame, as ``data.clip`` of a recipe says
    (``clip_windows``); a clip shorter than a window is refused."""
    from .decode import STORE_DTYPES
    from .preprocess import clip_windows, to_clip

    clip = to_clip(raw, modality=modality, size=size, source=source).astype(STORE_DTYPES[modality]).astype(np.float32)
    length = min(frames, len(clip)) if kind == "image" else frames
    if len(clip) < length:
        raise ValueError(f"{source} gives {len(clip)} time steps, the model takes windows of {length}")
    starts = clip_windows(len(clip), length, stride or length)
    return np.stack([layout(clip[start:start + length], kind) for start in starts])


def take(clip: np.ndarray, start: int, length: int, pad: str = "error") -> np.ndarray:
    """``length`` frames of ``clip`` from ``start``; fewer left are filled as ``data.clip.pad``
    says (``loop``, ``edge``: the last frame repeated, ``zero``), as the tf.data windows are."""
    window = clip[start:start + length]
    if len(window) == length:
        return window
    if pad == "zero":
        return np.concatenate([window, np.zeros((length - len(window), *window.shape[1:]), window.dtype)])
    if pad in ("loop", "edge"):
        steps = np.arange(length)
        return window[steps % len(window) if pad == "loop" else np.minimum(steps, len(window) - 1)]
    raise ValueError(f"a clip of {len(clip)} frames has no window of {length} from frame {start} (data.clip.pad: error)")


def layout(window: np.ndarray, kind: str) -> np.ndarray:
    """A window (T, H, W, C), or (T, C) for inertial, in the layout ``kind``."""
    if kind == "image":
        return window.mean(axis=0, dtype=np.float32)
    if kind == "stack2d":  # flow fields side by side in channels: (H, W, T * C)
        t, h, w, c = window.shape
        return np.ascontiguousarray(window.transpose(1, 2, 0, 3).reshape(h, w, t * c))
    return window
