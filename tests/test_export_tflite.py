"""The tflite exporter: FP32 equals Keras, FP16 is close, INT8 (float I/O) agrees on top-1."""

from __future__ import annotations

import numpy as np
import pytest
from test_export_models import TrainedModels, keras_outputs, make_ctx

from gaitrun.errors import StageError
from gaitrun.export.parity import parity_report, run_tflite
from gaitrun.plugins.exporters import tflite

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def models():
    return TrainedModels()


@pytest.fixture(params=["2d", "3d"])
def data(request, models):
    return models[request.param]


@pytest.fixture
def data2d(models):
    return models["2d"]


def _export(data, tmp_path, precision):
    calib = data["x"][:64] if precision == "int8" else None
    ctx = make_ctx(tmp_path, data["kind"], precision, calibration=calib)
    return tflite.export(data["model"], params=tflite.Params(), ctx=ctx)


def _interpreter_io(path):
    from gaitrun.export.parity import _tflite_interpreter

    interpreter = _tflite_interpreter(path)
    return interpreter.get_input_details()[0], interpreter.get_output_details()[0]


def test_fp32_equals_keras_at_any_batch(data, tmp_path):
    result = _export(data, tmp_path, "fp32")
    path = tmp_path / result["model"]
    assert result["status"] == "done" and result["model"] == "model.fp32.tflite"
    assert result["files"] == [{"path": "model.fp32.tflite", "bytes": path.stat().st_size}]
    assert _interpreter_io(path)[0]["shape_signature"][0] == -1  # dynamic batch axis
    for batch in (1, 7, 32):
        x = data["x_test"][:batch]
        np.testing.assert_array_less(np.abs(run_tflite(path, x, batch_size=batch) - keras_outputs(data, x)), 1e-4)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.fp32.tflite"]  # no temp folder left


def test_fp16_is_close(data2d, tmp_path):
    path = tmp_path / _export(data2d, tmp_path, "fp16")["model"]
    report = parity_report(keras_outputs(data2d), run_tflite(path, data2d["x_test"]))
    assert report["max_abs_diff"] < 1e-2 and report["top1_agreement"] >= 0.99


def test_int8_keeps_float_io_and_agrees_on_top1(data, tmp_path):
    path = tmp_path / _export(data, tmp_path, "int8")["model"]
    inp, out = _interpreter_io(path)
    assert inp["dtype"] == np.float32 and out["dtype"] == np.float32
    report = parity_report(keras_outputs(data), run_tflite(path, data["x_test"]), labels=data["y_test"])
    assert report["top1_agreement"] >= 0.97


def test_unsupported_op_gives_a_one_line_reason(tmp_path):
    import keras

    inp = keras.Input((4, 8, 8, 1), name="clip")
    out = keras.layers.Flatten()(keras.layers.MaxPooling3D((1, 2, 2))(inp))
    model = keras.Model(inp, out)
    with pytest.raises(StageError, match="no built-in kernel for MaxPool3D; use the onnx target"):
        tflite.export(model, params=tflite.Params(), ctx=make_ctx(tmp_path, "3d", "fp32"))
