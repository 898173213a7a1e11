"""Raw adapter output -> model inputs, exactly as a run makes them: ``to_clip`` (NumPy, once per
sample), the clip store's precision, then the tf.data evaluation windows in the model's layout.

Serving (raw uploads) and tests use it, so that there is one way from a decoded file to what the
model sees, the one training and evaluation take.
"""

from __future__ import annotations

import numpy as np


def model_inputs(raw: np.ndarray, *, modality: str, kind: str, frames: int, size: tuple[int, int],
                 stride: int | None = None, source: str = "sample") -> np.ndarray:
    """(windows, *input_shape) float32 for one decoded sample ``raw``; ``stride`` between windows
    (default ``frames``), as ``data.clip`` of a recipe says."""
    from .pipeline import eval_dataset
    from .preprocess import to_clip
    from .store import ClipStore

    clip = to_clip(raw, modality=modality, size=size, source=source)
    one = np.zeros(1, np.int64)
    store = ClipStore(frames=clip.astype(np.float16), offsets=one, lengths=np.array([len(clip)]), kept=one)
    ds, _ = eval_dataset(store, one, None, kind=kind, frames=frames, stride=stride, batch_size=64)
    return np.concatenate([batch.numpy() for batch in ds]).astype(np.float32)
