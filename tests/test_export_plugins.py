"""Exporter modules fit the plugin contract, import cheaply, and write files atomically."""

from __future__ import annotations

import importlib
import subprocess
import sys
from types import SimpleNamespace

import numpy as np
import pytest
from pydantic import ValidationError

from gaitrun.atomic import atomic_dir, atomic_path, write_bytes
from gaitrun.errors import StageError
from gaitrun.export import ExportContext, check_calibration
from gaitrun.export.arrays import even_batch_size
from gaitrun.export.tensorrt_bundle import profile_shapes
from gaitrun.registry import Registry

TARGETS = {"saved_model": {"fp32"}, "onnx": {"fp32", "fp16", "int8"},
           "tflite": {"fp32", "fp16", "int8"}, "tensorrt": {"fp32", "fp16", "int8"}}


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_each_exporter_fits_the_family(name):
    module = importlib.import_module(f"gaitrun.plugins.exporters.{name}")
    plugin = Registry("exporters").add(name, module)
    assert plugin.declared("PRECISIONS") == TARGETS[name]
    assert plugin.params().model_config["frozen"]
    with pytest.raises(ValidationError):
        plugin.params(no_such_key=1)


def test_params_are_checked():
    from gaitrun.plugins.exporters import onnx, tensorrt

    assert onnx.Params().opset == 17 and tensorrt.Params().workspace_mb == 1024
    with pytest.raises(ValidationError):
        onnx.Params(opset=9)
    with pytest.raises(ValidationError):
        tensorrt.Params(calibration_batch=0)


def test_importing_exporters_loads_no_heavy_library():
    code = ("import sys, gaitrun.plugins.exporters.onnx, gaitrun.plugins.exporters.tflite, "
            "gaitrun.plugins.exporters.tensorrt, gaitrun.plugins.exporters.saved_model, gaitrun.export; "
            "heavy = {'tensorflow', 'keras', 'onnx', 'onnxruntime', 'tf2onnx', 'tensorrt'}; "
            "print(sorted(heavy & set(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_export_context_validates_deploy_keys(tmp_path):
    def ctx(**kw):
        base = dict(out_dir=tmp_path, precision="fp32", batch_sizes=(1,), calibration=np.zeros((0, 2)),
                    input_name="x", labels=[], normalisation={})
        return ExportContext(**{**base, **kw})

    assert ctx().strict is False
    with pytest.raises(StageError, match="precision 'fp64'"):
        ctx(precision="fp64")
    with pytest.raises(StageError, match="batch_sizes"):
        ctx(batch_sizes=(0,))
    with pytest.raises(StageError, match="calibration_samples"):
        ctx(precision="int8")
    model = SimpleNamespace(inputs=[SimpleNamespace(shape=(None, 16, 16, 3))])
    check_calibration(ctx(precision="int8", calibration=np.zeros((2, 16, 16, 3))), model)
    with pytest.raises(StageError, match=r"shape \(8, 8, 3\) but the model expects \(16, 16, 3\)"):
        check_calibration(ctx(precision="int8", calibration=np.zeros((2, 8, 8, 3))), model)


def test_atomic_writes_leave_nothing_behind_when_interrupted(tmp_path):
    write_bytes(tmp_path / "model.onnx", b"old")
    with pytest.raises(RuntimeError), atomic_path(tmp_path / "model.onnx") as tmp:
        tmp.write_bytes(b"half")
        raise RuntimeError("killed")
    with pytest.raises(RuntimeError), atomic_dir(tmp_path / "bundle") as folder:
        (folder / "model.onnx").write_bytes(b"half")
        raise RuntimeError("killed")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.onnx"]
    assert (tmp_path / "model.onnx").read_bytes() == b"old"


def test_atomic_dir_replaces_a_previous_export(tmp_path):
    for content in (b"first", b"second"):
        with atomic_dir(tmp_path / "bundle") as folder:
            (folder / "model.onnx").write_bytes(content)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bundle"]
    assert (tmp_path / "bundle" / "model.onnx").read_bytes() == b"second"


def test_profile_and_calibration_batch_choices():
    assert profile_shapes((8, 1, 32), [3]) == {"min": [1, 3], "opt": [8, 3], "max": [32, 3]}
    assert profile_shapes((4,), [3]) == {"min": [4, 3], "opt": [4, 3], "max": [4, 3]}
    assert [even_batch_size(n, 8) for n in (128, 36, 7, 3)] == [8, 6, 7, 3]
    assert even_batch_size(13, 8) == 1
