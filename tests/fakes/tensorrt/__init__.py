"""Test double of the ``tensorrt`` Python module (TensorRT 10 API), for machines without a GPU.

WHAT IT IS FOR. TensorRT's wheels need an NVIDIA GPU and driver, which the CI machine lacks.
This double imitates only the API surface gaitrun's bundle builder
(``gaitrun/export/trt_builder.py``) uses, with TensorRT 10's names and signatures:
``Logger``, ``Builder`` (``create_network``, ``create_builder_config``,
``create_optimization_profile``, ``build_serialized_network``), ``OnnxParser``
(``parse_from_file``, ``num_errors``, ``get_error``), ``IBuilderConfig``
(``set_memory_pool_limit``, ``set_flag``, ``add_optimization_profile``,
``set_calibration_profile``, ``int8_calibrator``, timing-cache calls), ``IOptimizationProfile``
(``set_shape``), ``IInt8EntropyCalibrator2``, ``MemoryPoolType``, ``BuilderFlag``.

It records every build in ``BUILDS`` (flags set, workspace limit, profile shapes, the
calibration profile, each calibration batch read back from "device memory" of the fake
``cuda.bindings.runtime``, whether a calibration or timing cache was used) and "serializes" a
fake engine: bytes starting with ``FAKE_ENGINE_MAGIC``, followed by that record as JSON.
Like TensorRT it refuses to build when a dynamic input has no optimisation profile, when a
profile does not fit the network's input, or when INT8 calibration of a dynamic-shape network
has no calibration profile; then ``build_serialized_network`` returns ``None``.

WHAT IT IS NOT. It optimises nothing and runs nothing: tests using it only check that the
builder drives the TensorRT API as documented. Whether a real engine builds, and how fast or
accurate it is, is UNVERIFIED on this machine; that needs a GPU with TensorRT installed.
"""

from __future__ import annotations

import enum
import json
from typing import Any

import numpy as np

__version__ = "10.0.0+fake"
FAKE_ENGINE_MAGIC = b"FAKE-TENSORRT-ENGINE\n"
BUILDS: list[dict[str, Any]] = []


class Logger:
    VERBOSE, INFO, WARNING, ERROR, INTERNAL_ERROR = range(5)

    def __init__(self, min_severity: int = 2) -> None:
        self.min_severity = min_severity


class MemoryPoolType(enum.Enum):
    WORKSPACE = 0


class BuilderFlag(enum.Enum):
    FP16 = 0
    INT8 = 1


class DataType(enum.Enum):
    FLOAT = 0


class ITensor:
    def __init__(self, name: str, shape: tuple[int, ...]) -> None:
        self.name, self.shape, self.dtype = name, shape, DataType.FLOAT


class INetworkDefinition:
    def __init__(self, flags: int) -> None:
        self.flags = flags
        self.inputs: list[ITensor] = []
        self.outputs: list[ITensor] = []

    @property
    def num_inputs(self) -> int:
        return len(self.inputs)

    @property
    def num_outputs(self) -> int:
        return len(self.outputs)

    def get_input(self, index: int) -> ITensor:
        return self.inputs[index]

    def get_output(self, index: int) -> ITensor:
        return self.outputs[index]


class OnnxParser:
    """Reads the ONNX file's inputs and outputs (with ``onnx``) into the network; -1 = dynamic."""

    def __init__(self, network: INetworkDefinition, logger: Logger) -> None:
        self.network, self.errors = network, []

    @property
    def num_errors(self) -> int:
        return len(self.errors)

    def get_error(self, index: int) -> str:
        return self.errors[index]

    def parse_from_file(self, path: str) -> bool:
        import onnx

        try:
            graph = onnx.load(path).graph
        except Exception as exc:
            self.errors.append(f"cannot read {path}: {exc}")
            return False
        known = {i.name for i in graph.initializer}
        for source, target in ((graph.input, self.network.inputs), (graph.output, self.network.outputs)):
            for value in source:
                if value.name not in known:
                    dims = value.type.tensor_type.shape.dim
                    target.append(ITensor(value.name, tuple(d.dim_value if d.HasField("dim_value") else -1
                                                            for d in dims)))
        return True


class IOptimizationProfile:
    def __init__(self) -> None:
        self.shapes: dict[str, tuple[tuple[int, ...], ...]] = {}

    def set_shape(self, input: str, min: Any, opt: Any, max: Any) -> None:  # noqa: A002 - TRT's names
        self.shapes[input] = (tuple(min), tuple(opt), tuple(max))

    def get_shape(self, input: str) -> list[tuple[int, ...]]:  # noqa: A002
        return list(self.shapes[input])


class ITimingCache:
    def __init__(self, blob: bytes) -> None:
        self.blob = bytes(blob)

    def serialize(self) -> bytes:
        return b"fake-timing-cache:" + str(len(BUILDS)).encode()


class IHostMemory(bytes):
    """Real IHostMemory exposes the buffer protocol; a bytes subclass does too."""

    @property
    def nbytes(self) -> int:
        return len(self)


class IInt8EntropyCalibrator2:
    """Base class; subclasses override get_batch_size/get_batch/read_/write_calibration_cache."""

    def __init__(self) -> None:
        self._base_initialised = True


class IBuilderConfig:
    def __init__(self) -> None:
        self.flags: set[BuilderFlag] = set()
        self.pool_limits: dict[MemoryPoolType, int] = {}
        self.profiles: list[IOptimizationProfile] = []
        self.calibration_profile: IOptimizationProfile | None = None
        self.int8_calibrator: IInt8EntropyCalibrator2 | None = None
        self.timing_cache: ITimingCache | None = None

    def set_memory_pool_limit(self, pool: MemoryPoolType, pool_size: int) -> None:
        self.pool_limits[pool] = int(pool_size)

    def set_flag(self, flag: BuilderFlag) -> None:
        self.flags.add(flag)

    def get_flag(self, flag: BuilderFlag) -> bool:
        return flag in self.flags

    def add_optimization_profile(self, profile: IOptimizationProfile) -> int:
        self.profiles.append(profile)
        return len(self.profiles) - 1

    def set_calibration_profile(self, profile: IOptimizationProfile) -> bool:
        self.calibration_profile = profile
        return True

    def create_timing_cache(self, serialized_timing_cache: bytes) -> ITimingCache:
        return ITimingCache(serialized_timing_cache)

    def set_timing_cache(self, cache: ITimingCache, ignore_mismatch: bool) -> bool:
        self.timing_cache = cache
        return True

    def get_timing_cache(self) -> ITimingCache | None:
        return self.timing_cache


class Builder:
    def __init__(self, logger: Logger) -> None:
        self.logger = logger

    def create_network(self, flags: int = 0) -> INetworkDefinition:
        return INetworkDefinition(flags)

    def create_builder_config(self) -> IBuilderConfig:
        return IBuilderConfig()

    def create_optimization_profile(self) -> IOptimizationProfile:
        return IOptimizationProfile()

    def build_serialized_network(self, network: INetworkDefinition, config: IBuilderConfig) -> IHostMemory | None:
        record: dict[str, Any] = {
            "flags": sorted(f.name for f in config.flags),
            "workspace": config.pool_limits.get(MemoryPoolType.WORKSPACE),
            "profiles": [{k: [list(s) for s in v] for k, v in p.shapes.items()} for p in config.profiles],
            "calibration_profile": None, "calibration_batches": [], "calibration_cache_used": False,
            "timing_cache_in": None if config.timing_cache is None else len(config.timing_cache.blob),
        }
        problem = _check_profiles(network, config.profiles)
        if problem is None and BuilderFlag.INT8 in config.flags and config.int8_calibrator is not None:
            problem = _calibrate(network, config, record)
        record["error"] = problem
        BUILDS.append(record)
        if problem is not None:
            return None
        summary = {k: v for k, v in record.items() if k != "calibration_batches"}
        return IHostMemory(FAKE_ENGINE_MAGIC + json.dumps(summary).encode())


def _fits(dims: tuple[int, ...], shapes: tuple[tuple[int, ...], ...]) -> bool:
    low, opt, high = shapes
    if not len(dims) == len(low) == len(opt) == len(high):
        return False
    static_ok = all(d == -1 or d == lo == o == hi for d, lo, o, hi in zip(dims, low, opt, high, strict=True))
    return static_ok and all(1 <= lo <= o <= hi for lo, o, hi in zip(low, opt, high, strict=True))


def _check_profiles(network: INetworkDefinition, profiles: list[IOptimizationProfile]) -> str | None:
    """TensorRT's rule: every dynamic input needs min <= opt <= max shapes in every profile."""
    for tensor in network.inputs:
        if -1 not in tensor.shape:
            continue
        if not profiles:
            return f"input {tensor.name} is dynamic but no optimization profile was added"
        for p in profiles:
            if tensor.name not in p.shapes or not _fits(tensor.shape, p.shapes[tensor.name]):
                return f"profile shapes {p.shapes.get(tensor.name)} do not fit input {tensor.name}{tensor.shape}"
    return None


def _calibrate(network: INetworkDefinition, config: IBuilderConfig, record: dict[str, Any]) -> str | None:
    """Imitate INT8 calibration: use the cache if the calibrator returns one, else read batches."""
    calibrator = config.int8_calibrator
    if not getattr(calibrator, "_base_initialised", False):
        return "the calibrator did not call IInt8EntropyCalibrator2.__init__"
    if calibrator.read_calibration_cache():
        record["calibration_cache_used"] = True
        return None
    tensor = network.inputs[0]
    if -1 in tensor.shape and config.calibration_profile is None:
        return "INT8 calibration of a dynamic-shape network needs set_calibration_profile"
    profile = config.calibration_profile
    if profile is not None and (tensor.name not in profile.shapes or not _fits(tensor.shape, profile.shapes[tensor.name])):
        return f"calibration profile {profile.shapes.get(tensor.name)} does not fit input {tensor.name}{tensor.shape}"
    shape = profile.shapes[tensor.name][1] if profile is not None else tensor.shape
    record["calibration_profile"] = list(shape)
    record["calibration_batch_size"] = calibrator.get_batch_size()
    from cuda.bindings import runtime  # the fake cuda-python: "device memory" lives in this process

    while (pointers := calibrator.get_batch([tensor.name])):
        raw = runtime.read_device(pointers[0], int(np.prod(shape)) * 4)
        record["calibration_batches"].append(np.frombuffer(raw, dtype=np.float32).reshape(shape))
    calibrator.write_calibration_cache(b"fake-calibration-cache:" + str(len(record["calibration_batches"])).encode())
    return None
