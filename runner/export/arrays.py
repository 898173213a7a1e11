"""Small array helpers shared by the exporters and the parity check."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np


def iter_batches(x: np.ndarray, batch_size: int) -> Iterator[np.ndarray]:
    """Consecutive contiguous float32 slices of ``x`` of at most ``batch_size`` samples."""
    for start in range(0, len(x), batch_size):
        yield np.ascontiguousarray(x[start:start + batch_size], dtype=np.float32)


def even_batch_size(n: int, cap: int) -> int:
    """The largest batch size <= ``cap`` that splits ``n`` samples into equal batches."""
    return max(b for b in range(1, min(n, cap) + 1) if n % b == 0)
