#!/usr/bin/env python3
"""Build a TensorRT engine from a gaitrun TensorRT bundle, on the device that will run it.

TensorRT engines only run on the GPU model (and TensorRT version) that built them, so gaitrun
exports a portable bundle and this script turns it into ``model.engine`` on the target, e.g. a
Jetson. It is ``gaitrun/export/trt_builder.py``, copied into every bundle as
``build_engine.py``; it imports nothing from gaitrun.

    python3 build_engine.py [BUNDLE_DIR] [--workspace-mb N]     # BUNDLE_DIR: this file's folder

Needs: numpy, TensorRT >= 10 (``import tensorrt``) and cuda-python (``pip install cuda-python``)
which it uses to count the visible GPUs and to copy INT8 calibration batches to device memory.

The bundle (written by gaitrun's ``tensorrt`` exporter)::

    model.onnx            FP32 graph, dynamic batch axis
    metadata.json         input name and shape, precision, optimisation profile, calibration
    calib/batch_000.npy   INT8 only: preprocessed training samples, one calibration batch each

The build: ONNX parser -> network; builder config with a workspace pool limit, one optimisation
profile (min/opt/max batch), FP16 or INT8 flag; for INT8 an entropy calibrator (TensorRT's
``IInt8EntropyCalibrator2``) reads ``calib/*.npy`` and caches its scales in
``calibration.cache`` (reused by later builds and by ``trtexec --calib``); a timing cache in
``timing.cache`` speeds up rebuilds. ``model.engine`` is written atomically.

TensorRT 10.1+ marks this implicit (calibrator-based) INT8 path deprecated in favour of
explicit quantization (QDQ graphs); it still works throughout TensorRT 10.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

ENGINE = "model.engine"
TIMING_CACHE = "timing.cache"
CALIBRATION_CACHE = "calibration.cache"
METADATA = "metadata.json"
DEFAULT_WORKSPACE_MB = 1024


class BundleError(Exception):
    """The bundle folder is missing a file or holds an unreadable one."""

    def __init__(self, path: Path, reason: str):
        self.path, self.reason = str(path), reason
        super().__init__(f"{path}: {reason}")


class EngineBuildError(Exception):
    """This machine cannot build the engine, or TensorRT failed to."""


def missing_requirement() -> str | None:
    """Why an engine cannot be built on this machine, or ``None`` when it can."""
    try:
        import tensorrt  # noqa: F401
    except ImportError:
        return "tensorrt is not installed"
    try:
        count = cuda_device_count()
    except ImportError:
        return "cuda-python is not installed (pip install cuda-python)"
    return None if count > 0 else "no CUDA GPU visible"


def cuda_runtime() -> Any:
    """cuda-python's CUDA runtime module (``cuda.bindings.runtime``; ``cuda.cudart`` before 12.6)."""
    try:
        from cuda.bindings import runtime
    except ImportError:
        from cuda import cudart as runtime
    return runtime


def cuda_device_count() -> int:
    """How many CUDA GPUs this process can see (0 when the driver reports none)."""
    cudart = cuda_runtime()
    err, count = cudart.cudaGetDeviceCount()
    return int(count) if err == cudart.cudaError_t.cudaSuccess else 0


def build_engine(bundle_dir: str | Path, *, workspace_mb: int | None = None) -> Path:
    """Build ``model.engine`` in ``bundle_dir`` and return its path."""
    bundle = Path(bundle_dir)
    meta = load_metadata(bundle)
    reason = missing_requirement()
    if reason:
        raise EngineBuildError(f"cannot build a TensorRT engine here: {reason}")
    import tensorrt as trt

    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(0)  # TensorRT 10: explicit batch is the only mode
    _parse_onnx(trt, network, logger, bundle / meta["model"])
    config = builder.create_builder_config()
    workspace = workspace_mb or meta.get("workspace_mb", DEFAULT_WORKSPACE_MB)
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(workspace) << 20)
    config.add_optimization_profile(_profile(builder, meta["input"]["name"], meta["profile"]))
    calibrator = _set_precision(trt, builder, config, bundle, meta)
    _use_timing_cache(config, bundle / TIMING_CACHE)
    try:
        serialized = builder.build_serialized_network(network, config)
    finally:
        if calibrator is not None:
            calibrator.free()
    if serialized is None:
        raise EngineBuildError(f"TensorRT could not build the engine for {bundle}; see its log above")
    timing = config.get_timing_cache()
    if timing is not None:
        write_atomic(bundle / TIMING_CACHE, timing.serialize())
    write_atomic(bundle / ENGINE, serialized)
    return bundle / ENGINE


def load_metadata(bundle: Path) -> dict[str, Any]:
    """``metadata.json`` of the bundle, checked for the files it names."""
    path = bundle / METADATA
    if not path.is_file():
        raise BundleError(path, "not found: this folder is not a gaitrun TensorRT bundle "
                                "(export one with deploy.target: tensorrt)")
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise BundleError(path, f"unreadable ({exc}); export the bundle again") from exc
    lacking = [k for k in ("model", "input", "precision", "profile") if k not in meta]
    if lacking:
        raise BundleError(path, f"lacks {lacking}; export the bundle again")
    needed = [meta["model"], *(meta.get("calibration") or {}).get("files", [])]
    for name in needed:
        if not (bundle / name).is_file():
            raise BundleError(bundle / name, "missing from the bundle; copy the whole bundle folder")
    return meta


def write_atomic(path: Path, data: Any) -> None:
    """Write a bytes-like object to ``path`` through a temporary file and a rename."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(memoryview(data))
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def _parse_onnx(trt: Any, network: Any, logger: Any, onnx_path: Path) -> None:
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise EngineBuildError(f"TensorRT cannot parse {onnx_path}: {errors}")


def _profile(builder: Any, input_name: str, shapes: dict[str, list[int]]) -> Any:
    profile = builder.create_optimization_profile()
    profile.set_shape(input_name, tuple(shapes["min"]), tuple(shapes["opt"]), tuple(shapes["max"]))
    return profile


def _set_precision(trt: Any, builder: Any, config: Any, bundle: Path, meta: dict[str, Any]) -> Any:
    """Set the FP16/INT8 flag; for INT8 attach the calibrator and its fixed-shape profile."""
    if meta["precision"] == "fp16":
        config.set_flag(trt.BuilderFlag.FP16)
    if meta["precision"] != "int8":
        return None
    calib = meta["calibration"]
    config.set_flag(trt.BuilderFlag.INT8)
    calibrator = _entropy_calibrator(trt, [bundle / f for f in calib["files"]], bundle / CALIBRATION_CACHE)
    config.int8_calibrator = calibrator
    shape = [calib["batch_size"], *meta["input"]["shape"]]
    config.set_calibration_profile(_profile(builder, meta["input"]["name"],
                                            {"min": shape, "opt": shape, "max": shape}))
    return calibrator


def _use_timing_cache(config: Any, path: Path) -> None:
    """Start from the bundle's timing cache if a previous build on this GPU left one."""
    cache = config.create_timing_cache(path.read_bytes() if path.is_file() else b"")
    config.set_timing_cache(cache, False)  # ignore_mismatch=False: a cache from another GPU is refused


def _cuda_check(result: tuple[Any, ...]) -> Any:
    """cuda-python returns ``(error, *values)``: raise on error, return the value."""
    cudart = cuda_runtime()
    err, *values = result
    if err != cudart.cudaError_t.cudaSuccess:
        raise EngineBuildError(f"CUDA call failed: {err}")
    return values[0] if values else None


def _entropy_calibrator(trt: Any, batch_files: list[Path], cache_path: Path) -> Any:
    """An ``IInt8EntropyCalibrator2`` that feeds TensorRT the ``.npy`` batches one by one."""
    cudart = cuda_runtime()

    class NpyEntropyCalibrator(trt.IInt8EntropyCalibrator2):
        def __init__(self) -> None:
            super().__init__()  # TensorRT requires the base constructor to run
            first = np.load(batch_files[0])
            self.batch_size, self.next_index = int(first.shape[0]), 0
            self.device = _cuda_check(cudart.cudaMalloc(first.astype(np.float32).nbytes))

        def get_batch_size(self) -> int:
            return self.batch_size

        def get_batch(self, names: list[str]) -> list[int] | None:
            if self.next_index >= len(batch_files):
                return None  # no more batches: calibration ends
            batch = np.ascontiguousarray(np.load(batch_files[self.next_index]), dtype=np.float32)
            self.next_index += 1
            _cuda_check(cudart.cudaMemcpy(self.device, batch, batch.nbytes,
                                          cudart.cudaMemcpyKind.cudaMemcpyHostToDevice))
            return [int(self.device)]

        def read_calibration_cache(self) -> bytes | None:
            return cache_path.read_bytes() if cache_path.is_file() else None

        def write_calibration_cache(self, cache: Any) -> None:
            write_atomic(cache_path, cache)

        def free(self) -> None:
            _cuda_check(cudart.cudaFree(self.device))

    return NpyEntropyCalibrator()


def main(argv: list[str] | None = None) -> int:
    """Command line: build the engine of the bundle this file sits in (or the one given)."""
    cli = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    cli.add_argument("bundle", nargs="?", default=str(Path(__file__).resolve().parent))
    cli.add_argument("--workspace-mb", type=int, default=None,
                     help="builder workspace limit in MiB (default: metadata.json's workspace_mb)")
    args = cli.parse_args(argv)
    try:
        engine = build_engine(args.bundle, workspace_mb=args.workspace_mb)
    except (BundleError, EngineBuildError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(engine)
    return 0


if __name__ == "__main__":
    sys.exit(main())
