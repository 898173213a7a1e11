"""The portable TensorRT bundle: everything a target device needs to build its own engine.

A bundle folder holds ``model.onnx`` (FP32, dynamic batch axis), ``metadata.json``,
``calib/batch_NNN.npy`` (INT8: the caller's calibration samples, in order, split into equal
batches), ``build_engine.py`` (a copy of :mod:`gaitrun.export.trt_builder`) and
``build_engine.sh`` (the equivalent ``trtexec`` command). The optimisation profile spans the
recipe's batch sizes: min = smallest, max = largest, opt = the middle one (upper median).
"""

from __future__ import annotations

import json
import shlex
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from .. import __version__
from ..errors import DataError, StageError
from . import trt_builder
from .arrays import even_batch_size

FORMAT = "gaitrun-tensorrt-bundle"
MODEL = "model.onnx"


def write_bundle(folder: Path, *, input_name: str, input_shape: list[int], output_names: list[str],
                 precision: str, batch_sizes: tuple[int, ...], calibration: np.ndarray,
                 calibration_batch: int, workspace_mb: int, labels: list[str],
                 normalisation: dict[str, Any], opset: int) -> dict[str, Any]:
    """Write everything but ``model.onnx`` into ``folder``; return the metadata written."""
    meta: dict[str, Any] = {
        "format": FORMAT, "format_version": 1, "gaitrun_version": __version__,
        "model": MODEL, "opset": opset, "engine": trt_builder.ENGINE,
        "input": {"name": input_name, "shape": input_shape, "dtype": "float32"},
        "outputs": output_names, "labels": labels, "normalisation": normalisation,
        "precision": precision, "profile": profile_shapes(batch_sizes, input_shape),
        "workspace_mb": workspace_mb,
        "calibration": write_calibration(folder, calibration, calibration_batch) if precision == "int8" else None,
    }
    (folder / trt_builder.METADATA).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    shutil.copyfile(trt_builder.__file__, folder / "build_engine.py")
    script = folder / "build_engine.sh"
    script.write_text(trtexec_script(meta), encoding="utf-8")
    script.chmod(0o755)
    return meta


def profile_shapes(batch_sizes: tuple[int, ...], input_shape: list[int]) -> dict[str, list[int]]:
    """min/opt/max input shapes: smallest, upper-median and largest batch size."""
    sizes = sorted(set(int(b) for b in batch_sizes))
    picks = {"min": sizes[0], "opt": sizes[len(sizes) // 2], "max": sizes[-1]}
    return {k: [b, *input_shape] for k, b in picks.items()}


def write_calibration(folder: Path, calibration: np.ndarray, cap: int) -> dict[str, Any]:
    """Split ``calibration`` into equal batches (the largest size <= ``cap`` dividing it)."""
    samples = np.ascontiguousarray(calibration, dtype=np.float32)
    size = even_batch_size(len(samples), cap)
    (folder / "calib").mkdir()
    files = []
    for i, start in enumerate(range(0, len(samples), size)):
        files.append(f"calib/batch_{i:03d}.npy")
        np.save(folder / files[-1], samples[start:start + size])
    return {"files": files, "batch_size": size, "samples": len(samples),
            "source": "training split, preprocessed like model inputs"}


def trtexec_script(meta: dict[str, Any]) -> str:
    """``build_engine.sh``: the ``trtexec`` command equivalent to ``build_engine.py``."""
    name = meta["input"]["name"]
    args = ["trtexec", f"--onnx={meta['model']}", f"--saveEngine={meta['engine']}"]
    args += [f"--{k}Shapes={name}:{'x'.join(map(str, meta['profile'][k]))}" for k in ("min", "opt", "max")]
    args += [f"--memPoolSize=workspace:{meta['workspace_mb']}M", f"--timingCacheFile={trt_builder.TIMING_CACHE}"]
    guard = ""
    if meta["precision"] == "fp16":
        args.append("--fp16")
    elif meta["precision"] == "int8":
        args += ["--int8", f"--calib={trt_builder.CALIBRATION_CACHE}"]
        guard = (f"if [ ! -f {trt_builder.CALIBRATION_CACHE} ]; then\n"
                 f"  echo '{trt_builder.CALIBRATION_CACHE} is missing: trtexec cannot calibrate on calib/*.npy.' >&2\n"
                 "  echo 'Run python3 build_engine.py instead (it calibrates and writes the cache).' >&2\n"
                 "  exit 1\nfi\n")
    command = " \\\n  ".join(shlex.quote(a) for a in args)
    return ("#!/bin/sh\n# Build model.engine for THIS GPU with trtexec; same result as python3 build_engine.py\n"
            f'set -eu\ncd "$(dirname "$0")"\n{guard}{command}\n')


def build_bundle_engine(bundle_dir: str | Path, *, workspace_mb: int | None = None) -> Path:
    """Build ``model.engine`` in a bundle on this machine (what ``gaitrun engine build`` runs)."""
    try:
        return trt_builder.build_engine(bundle_dir, workspace_mb=workspace_mb)
    except trt_builder.BundleError as exc:
        raise DataError(exc.path, exc.reason) from exc
    except trt_builder.EngineBuildError as exc:
        raise StageError("engine", f"{exc}; the bundle stays usable: run "
                                   f"`gaitrun engine build {bundle_dir}` on the target device") from exc
