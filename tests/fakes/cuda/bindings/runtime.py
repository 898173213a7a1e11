"""Test double of cuda-python's CUDA runtime module (``cuda.bindings.runtime``).

It imitates only the calls gaitrun's TensorRT bundle builder makes, with cuda-python's
conventions (every call returns a tuple whose first item is a ``cudaError_t``):
``cudaGetDeviceCount``, ``cudaMalloc``, ``cudaMemcpy`` (host to device) and ``cudaFree``.
"Device memory" is a dict of bytearrays in this process, so the fake ``tensorrt`` module can
read back what the builder copied and tests can check it. The number of "visible GPUs" is
``FAKE_CUDA_DEVICE_COUNT`` (default 1), which lets a test simulate a machine without a GPU.

It proves nothing about real CUDA: it only lets tests check that the builder drives the
documented API in the documented order.
"""

from __future__ import annotations

import enum
import itertools
import os

import numpy as np


class cudaError_t(enum.IntEnum):  # noqa: N801 - cuda-python's name
    cudaSuccess = 0
    cudaErrorInvalidValue = 1
    cudaErrorNoDevice = 100


class cudaMemcpyKind(enum.IntEnum):  # noqa: N801 - cuda-python's name
    cudaMemcpyHostToDevice = 1
    cudaMemcpyDeviceToHost = 2


MEMORY: dict[int, bytearray] = {}
_addresses = itertools.count(0x7F0000000000, 0x100000)


def cudaGetDeviceCount() -> tuple[cudaError_t, int]:  # noqa: N802
    count = int(os.environ.get("FAKE_CUDA_DEVICE_COUNT", "1"))
    return (cudaError_t.cudaSuccess, count) if count > 0 else (cudaError_t.cudaErrorNoDevice, 0)


def cudaMalloc(size: int) -> tuple[cudaError_t, int]:  # noqa: N802
    address = next(_addresses)
    MEMORY[address] = bytearray(int(size))
    return cudaError_t.cudaSuccess, address


def cudaMemcpy(dst: int, src: np.ndarray, count: int, kind: cudaMemcpyKind) -> tuple[cudaError_t]:  # noqa: N802
    if kind != cudaMemcpyKind.cudaMemcpyHostToDevice or dst not in MEMORY or count > len(MEMORY[dst]):
        return (cudaError_t.cudaErrorInvalidValue,)
    MEMORY[dst][:count] = np.ascontiguousarray(src).tobytes()[:count]
    return (cudaError_t.cudaSuccess,)


def cudaFree(ptr: int) -> tuple[cudaError_t]:  # noqa: N802
    return (cudaError_t.cudaSuccess,) if MEMORY.pop(ptr, None) is not None else (cudaError_t.cudaErrorInvalidValue,)


def read_device(ptr: int, count: int) -> bytes:
    """Test hook (not in cuda-python): the first ``count`` bytes at device address ``ptr``."""
    return bytes(MEMORY[ptr][:count])
