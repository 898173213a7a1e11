"""The tensorrt exporter: the portable bundle, deferral, and the builder driving the TensorRT API.

This machine has no GPU and TensorRT cannot be installed. Tests that need ``tensorrt`` put
the documented test doubles in ``tests/fakes`` (``tensorrt`` and cuda-python's
``cuda.bindings.runtime``) first on ``sys.path``, which also simulates "one GPU visible".
They check only that the builder drives the TensorRT 10 API as documented (flags, profile
shapes, calibration batches, caches); the real engine build is UNVERIFIED here.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from test_export_models import SHAPES, build_model, make_ctx, make_problem

from gaitrun.errors import DataError, StageError
from gaitrun.export import build_bundle_engine, trt_builder
from gaitrun.export.parity import run_keras, run_onnx
from gaitrun.plugins.exporters import tensorrt as trt_exporter

FAKES = Path(__file__).parent / "fakes"
SAMPLE = list(SHAPES["2d"])
no_real_tensorrt = pytest.mark.skipif(importlib.util.find_spec("tensorrt") is not None,
                                      reason="checks behaviour without TensorRT")


def _forget_gpu_modules() -> None:
    for name in [m for m in sys.modules if m.split(".")[0] in ("tensorrt", "cuda")]:
        del sys.modules[name]


@pytest.fixture
def fake_gpu(monkeypatch):
    """The tensorrt and cuda-python test doubles importable, with one 'visible GPU'."""
    _forget_gpu_modules()
    monkeypatch.syspath_prepend(str(FAKES))
    monkeypatch.setenv("FAKE_CUDA_DEVICE_COUNT", "1")
    import tensorrt

    tensorrt.BUILDS.clear()
    yield tensorrt
    _forget_gpu_modules()


@pytest.fixture(scope="module")
def model():
    return build_model("2d")


def _export(model, out_dir, precision, calibration=None, strict=False, **params):
    ctx = make_ctx(out_dir, "2d", precision, calibration=calibration, strict=strict)
    return trt_exporter.export(model, params=trt_exporter.Params(**params), ctx=ctx)


@no_real_tensorrt
def test_without_tensorrt_the_bundle_is_written_and_the_build_deferred(model, tmp_path):
    result = _export(model, tmp_path, "fp16")
    bundle = tmp_path / "tensorrt_fp16"
    assert (result["status"], result["reason"], result["model"]) == ("deferred", "tensorrt is not installed", None)
    assert {f["path"] for f in result["files"]} == {f"tensorrt_fp16/{n}" for n in
                                                     ("model.onnx", "metadata.json", "build_engine.py", "build_engine.sh")}
    assert (bundle / "build_engine.py").read_bytes() == Path(trt_builder.__file__).read_bytes()
    meta = json.loads((bundle / "metadata.json").read_text())
    assert meta["input"] == {"name": "image", "shape": SAMPLE, "dtype": "float32"}
    assert meta["profile"] == {"min": [1, *SAMPLE], "opt": [4, *SAMPLE], "max": [8, *SAMPLE]}
    assert (meta["precision"], meta["labels"], meta["calibration"]) == ("fp16", ["q0", "q1", "q2", "q3"], None)
    assert meta["normalisation"] == {"mean": 0.0, "std": 1.0} and meta["gaitrun_version"]
    script = (bundle / "build_engine.sh").read_text()
    for arg in ("trtexec", "--onnx=model.onnx", "--saveEngine=model.engine", "--minShapes=image:1x16x16x3",
                "--optShapes=image:4x16x16x3", "--maxShapes=image:8x16x16x3", "--fp16"):
        assert arg in script
    assert os.access(bundle / "build_engine.sh", os.X_OK)


def test_bundle_onnx_runs_at_every_profile_batch_size(model, tmp_path):
    _export(model, tmp_path, "fp32")
    x, _ = make_problem("2d", 8, seed=3)
    for batch in (1, 4, 8):
        out = run_onnx(tmp_path / "tensorrt_fp32" / "model.onnx", x[:batch], batch_size=batch)
        np.testing.assert_array_less(np.abs(out - run_keras(model, x[:batch])), 1e-4)


def test_calibration_batches_are_exactly_the_given_training_samples(model, tmp_path):
    calibration, _ = make_problem("2d", 36, seed=4)
    _export(model, tmp_path, "int8", calibration=calibration, calibration_batch=8)
    bundle = tmp_path / "tensorrt_int8"
    calib = json.loads((bundle / "metadata.json").read_text())["calibration"]
    assert (calib["batch_size"], calib["samples"]) == (6, 36)  # largest size <= 8 dividing 36
    assert calib["files"] == [f"calib/batch_{i:03d}.npy" for i in range(6)]
    np.testing.assert_array_equal(np.concatenate([np.load(bundle / f) for f in calib["files"]]), calibration)
    assert "--int8 --calib=calibration.cache" in (bundle / "build_engine.sh").read_text().replace(" \\\n  ", " ")


@no_real_tensorrt
def test_strict_export_without_tensorrt_fails_but_keeps_the_bundle(model, tmp_path):
    with pytest.raises(StageError, match=r"tensorrt is not installed.*gaitrun engine build"):
        _export(model, tmp_path, "fp32", strict=True)
    assert (tmp_path / "tensorrt_fp32" / "metadata.json").is_file()


def test_no_visible_gpu_defers_even_with_tensorrt(fake_gpu, model, tmp_path, monkeypatch):
    monkeypatch.setenv("FAKE_CUDA_DEVICE_COUNT", "0")
    result = _export(model, tmp_path, "fp32")
    assert (result["status"], result["reason"]) == ("deferred", "no CUDA GPU visible")
    assert fake_gpu.BUILDS == []


def test_int8_build_sets_flag_profiles_and_reads_every_calibration_batch(fake_gpu, model, tmp_path):
    calibration, _ = make_problem("2d", 24, seed=5)
    result = _export(model, tmp_path, "int8", calibration=calibration, workspace_mb=64)
    bundle = tmp_path / "tensorrt_int8"
    assert (result["status"], result["model"]) == ("done", "tensorrt_int8/model.engine")
    assert (bundle / "model.engine").read_bytes().startswith(fake_gpu.FAKE_ENGINE_MAGIC)
    build = fake_gpu.BUILDS[-1]
    assert build["error"] is None and build["flags"] == ["INT8"] and build["workspace"] == 64 << 20
    assert build["profiles"] == [{"image": [[1, *SAMPLE], [4, *SAMPLE], [8, *SAMPLE]]}]
    assert build["calibration_profile"] == [8, *SAMPLE]
    np.testing.assert_array_equal(np.concatenate(build["calibration_batches"]), calibration)
    assert (bundle / "calibration.cache").is_file() and (bundle / "timing.cache").is_file()

    build_bundle_engine(bundle)  # a rebuild reuses both caches instead of calibrating again
    assert fake_gpu.BUILDS[-1]["calibration_cache_used"] and fake_gpu.BUILDS[-1]["calibration_batches"] == []
    assert fake_gpu.BUILDS[-1]["timing_cache_in"] > 0 and fake_gpu.BUILDS[-1]["workspace"] == 64 << 20


@pytest.mark.parametrize(("precision", "flags"), [("fp16", ["FP16"]), ("fp32", [])])
def test_float_builds_set_only_their_flag(fake_gpu, model, tmp_path, precision, flags):
    assert _export(model, tmp_path, precision)["status"] == "done"
    build = fake_gpu.BUILDS[-1]
    assert (build["flags"], build["calibration_batches"], build["error"]) == (flags, [], None)


@no_real_tensorrt
def test_deferred_bundle_builds_later_with_the_standalone_script(model, tmp_path):
    calibration, _ = make_problem("2d", 16, seed=6)
    _export(model, tmp_path, "int8", calibration=calibration)
    bundle = tmp_path / "tensorrt_int8"
    env = {**os.environ, "PYTHONPATH": str(FAKES), "FAKE_CUDA_DEVICE_COUNT": "1"}
    done = subprocess.run([sys.executable, str(bundle / "build_engine.py")], env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(bundle / "model.engine") and (bundle / "calibration.cache").is_file()


@no_real_tensorrt
def test_engine_build_errors_name_the_problem(model, tmp_path):
    with pytest.raises(DataError, match="metadata.json: not found"):
        build_bundle_engine(tmp_path)
    (tmp_path / "metadata.json").write_text("{}")
    with pytest.raises(DataError, match="lacks"):
        build_bundle_engine(tmp_path)
    _export(model, tmp_path, "fp32")
    with pytest.raises(StageError, match="tensorrt is not installed"):
        build_bundle_engine(tmp_path / "tensorrt_fp32")
