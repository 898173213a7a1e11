"""The onnx exporter: FP32 equals Keras, FP16 is close, INT8 agrees on top-1; batch axis dynamic."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from test_export_models import TrainedModels, keras_outputs, make_ctx

from gaitrun.export.onnx_convert import input_signature
from gaitrun.export.parity import parity_report, run_onnx
from gaitrun.plugins.exporters import onnx as onnx_exporter

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


def _export(data, tmp_path, precision, **params):
    calib = data["x"][:64] if precision == "int8" else None
    ctx = make_ctx(tmp_path, data["kind"], precision, calibration=calib)
    return ctx, onnx_exporter.export(data["model"], params=onnx_exporter.Params(**params), ctx=ctx)


def test_fp32_equals_keras_with_dynamic_named_batch_axis(data, tmp_path):
    ctx, result = _export(data, tmp_path, "fp32")
    path = tmp_path / result["model"]
    assert result["status"] == "done" and result["model"] == "model.fp32.onnx"
    assert result["files"] == [{"path": "model.fp32.onnx", "bytes": path.stat().st_size}]
    assert input_signature(path) == (ctx.input_name, [None, *data["x"].shape[1:]])
    assert onnx.load(str(path)).opset_import[0].version == 17
    for batch in (1, 5, 64):  # any batch size runs
        x = data["x_test"][:batch]
        np.testing.assert_array_less(np.abs(run_onnx(path, x, batch_size=batch) - keras_outputs(data, x)), 1e-4)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.fp32.onnx"]  # no temp files left


def test_fp16_is_close_and_keeps_float32_io(data2d, tmp_path):
    _, result = _export(data2d, tmp_path, "fp16")
    path = tmp_path / result["model"]
    graph = onnx.load(str(path)).graph
    assert graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert any(i.data_type == onnx.TensorProto.FLOAT16 for i in graph.initializer)
    report = parity_report(keras_outputs(data2d), run_onnx(path, data2d["x_test"]))
    assert report["max_abs_diff"] < 1e-2 and report["top1_agreement"] >= 0.99
    assert input_signature(path)[1][0] is None


def test_int8_qdq_per_channel_agrees_on_top1(data, tmp_path):
    _, result = _export(data, tmp_path, "int8")
    path = tmp_path / result["model"]
    graph = onnx.load(str(path)).graph
    ops = {n.op_type for n in graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    scales = {i.name: onnx.numpy_helper.to_array(i) for i in graph.initializer}
    weight_scales = [scales[n.input[1]] for n in graph.node
                     if n.op_type == "DequantizeLinear" and scales.get(n.input[0]) is not None
                     and scales[n.input[0]].dtype == np.int8 and scales[n.input[0]].ndim >= 4]
    assert weight_scales and all(s.size > 1 for s in weight_scales)  # one scale per output channel
    assert input_signature(path)[1][0] is None
    report = parity_report(keras_outputs(data), run_onnx(path, data["x_test"]), labels=data["y_test"])
    assert report["top1_agreement"] >= 0.97


def test_int8_without_calibration_is_refused(data, tmp_path):
    from gaitrun.errors import StageError

    with pytest.raises(StageError, match="calibration"):
        make_ctx(tmp_path, data["kind"], "int8")
