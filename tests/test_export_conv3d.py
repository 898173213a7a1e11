"""Conv3D computed as Conv2D over frames: exact in ONNX and in TFLite, left alone where it cannot be."""

from __future__ import annotations

import collections

import numpy as np
import onnx
import pytest
from test_export_models import make_ctx

from gaitrun.export.conv3d_as_2d import rewrite_conv3d
from gaitrun.export.keras_conv3d import with_conv3d_as_2d
from gaitrun.export.onnx_graph import attrs, producers
from gaitrun.export.parity import run_keras, run_onnx, run_tflite
from gaitrun.plugins.exporters import onnx as onnx_exporter
from gaitrun.plugins.exporters import tflite

pytestmark = pytest.mark.slow

SHAPE = (7, 13, 12, 2)


def _model(padding: str = "valid"):
    """Strided and unstrided Conv3Ds in a row (the frame-major layout carries over), a Relu-less one last."""
    import keras

    keras.utils.set_random_seed(3)
    inp = keras.Input(SHAPE, name="clip")
    h = keras.layers.Conv3D(4, (3, 5, 3), strides=(2, 2, 1), activation="relu")(inp)
    h = keras.layers.Conv3D(5, (2, 3, 3), padding=padding, activation="relu")(h)
    h = keras.layers.Conv3D(3, (2, 1, 2), strides=(1, 2, 2))(h)
    out = keras.layers.Dense(4, activation="softmax")(keras.layers.Flatten()(h))
    return keras.Model(inp, out)


@pytest.fixture(scope="module")
def x():
    return np.random.default_rng(0).normal(size=(5, *SHAPE)).astype("float32")


def _conv_ranks(path) -> list[int]:
    graph = onnx.load(str(path)).graph
    weights = {i.name: len(i.dims) for i in graph.initializer}
    return sorted(weights[n.input[1]] for n in graph.node if n.op_type == "Conv")


def test_onnx_rewrite_is_exact_at_any_batch(x, tmp_path):
    model = _model()
    path = tmp_path / onnx_exporter.export(model, params=onnx_exporter.Params(), ctx=make_ctx(tmp_path, "3d", "fp32"))["model"]
    assert _conv_ranks(path) == [4, 4, 4]
    ops = [n.op_type for n in onnx.load(str(path)).graph.node]
    convs = [i for i, op in enumerate(ops) if op == "Conv"]
    assert ops[0] == "Transpose" and "Transpose" not in ops[1:convs[-1]]  # frame-major from first to last conv
    for batch in (1, 5):
        np.testing.assert_array_less(np.abs(run_onnx(path, x[:batch]) - run_keras(model, x[:batch])), 1e-5)


def test_onnx_rewrite_skips_temporal_padding_and_keeps_the_rest(x, tmp_path):
    model = _model(padding="same")  # the middle conv pads in time: not a Conv2D over frames
    ctx = make_ctx(tmp_path, "3d", "fp32")
    path = tmp_path / onnx_exporter.export(model, params=onnx_exporter.Params(), ctx=ctx)["model"]
    assert _conv_ranks(path) == [4, 4, 5]
    off = onnx_exporter.export(model, params=onnx_exporter.Params(conv3d_as_2d=False),
                               ctx=make_ctx(tmp_path / "off", "3d", "fp32"))
    assert _conv_ranks(tmp_path / "off" / off["model"]) == [5, 5, 5]
    np.testing.assert_array_less(np.abs(run_onnx(path, x) - run_keras(model, x)), 1e-5)
    assert rewrite_conv3d(onnx.load(str(path))) == 0  # nothing left it can rewrite


def test_onnx_int8_of_rewritten_graph_has_no_3d_conv(x, tmp_path):
    model = _model()
    ctx = make_ctx(tmp_path, "3d", "int8", calibration=x)
    path = tmp_path / onnx_exporter.export(model, params=onnx_exporter.Params(), ctx=ctx)["model"]
    graph = onnx.load(str(path)).graph
    assert sum(n.op_type == "Conv" for n in graph.node) == 3
    assert max(len(i.dims) for i in graph.initializer) == 4
    assert run_onnx(path, x).shape == (5, 4)


def _float_producer(graph, name: str):
    """The node making ``name``, looking through QuantizeLinear -> DequantizeLinear pairs."""
    made_by = producers(graph.node)
    node = made_by[name]
    while node.op_type in ("QuantizeLinear", "DequantizeLinear"):
        node = made_by[node.input[0]]
    return node


def _ort_optimized_ops(path, tmp_path) -> collections.Counter:
    """The op counts of the graph ONNX Runtime actually runs (after its own layout changes)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.optimized_model_filepath = str(tmp_path / f"{path.stem}.optimized.onnx")
    ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    return collections.Counter(n.op_type for n in onnx.load(options.optimized_model_filepath).graph.node)


@pytest.mark.parametrize("precision", ["fp32", "int8"])
def test_onnx_channels_last_rewrite_is_exact(precision, x, tmp_path):
    model = _model()
    outputs = {}
    for layout in ("channels_first", "channels_last"):
        ctx = make_ctx(tmp_path / layout, "3d", precision, calibration=x)
        path = ctx.out_dir / onnx_exporter.export(model, params=onnx_exporter.Params(conv_layout=layout), ctx=ctx)["model"]
        assert max(len(i.dims) for i in onnx.load(str(path)).graph.initializer) == 4  # no 5-D kernel left
        outputs[layout] = run_onnx(path, x)
    if precision == "fp32":
        np.testing.assert_array_less(np.abs(outputs["channels_last"] - run_keras(model, x)), 1e-5)
    else:  # the same integer sums in another order
        np.testing.assert_array_less(np.abs(outputs["channels_last"] - outputs["channels_first"]), 1e-6)


def test_onnx_int8_is_channels_last_and_moves_less_data_in_onnx_runtime(x, tmp_path):
    model = _model()
    transposes = {}
    for layout in ("auto", "channels_first"):
        ctx = make_ctx(tmp_path / layout, "3d", "int8", calibration=x)
        path = ctx.out_dir / onnx_exporter.export(model, params=onnx_exporter.Params(conv_layout=layout), ctx=ctx)["model"]
        graph = onnx.load(str(path)).graph
        feeds = [_float_producer(graph, n.input[0]) for n in graph.node if n.op_type == "Conv"]
        expected = ("Transpose", [0, 3, 1, 2]) if layout == "auto" else ("Reshape", None)  # NHWC frames, or NCHW
        assert [(f.op_type, list(attrs(f).get("perm", [])) or None) for f in feeds] == [expected] * 3
        ops = _ort_optimized_ops(path, tmp_path / layout)
        assert ops["QLinearConv"] == 3  # ONNX Runtime's integer convolution, in both layouts
        transposes[layout] = ops["Transpose"]
    # channels last: ONNX Runtime's NCHW <-> NHWC pairs around each QLinearConv cancel against the
    # rewrite's own, and so do the input's and the Flatten's; left: each conv's frame stacking
    assert transposes["auto"] == 3 < transposes["channels_first"]


def _first_layer_model(width: int):
    """A first layer as in the main job: 3 frames of x/y flow (6 stacked channels), width stride 2."""
    import keras

    keras.utils.set_random_seed(4)
    inp = keras.Input((7, 13, width, 2), name="clip")
    h = keras.layers.Conv3D(16, (3, 5, 5), strides=(1, 2, 2), activation="relu")(inp)
    h = keras.layers.Conv3D(16, (3, 3, 3), strides=(1, 2, 2), activation="relu")(h)
    return keras.Model(inp, keras.layers.Dense(4, activation="softmax")(keras.layers.Flatten()(h)))


@pytest.mark.parametrize(("width", "first_kernel"), [
    (12, [32, 24, 5, 2]),  # blocks of 4 columns, 2 output columns (phases) per block: 2 x 16 filters
    (14, [16, 12, 5, 3]),  # 5 output columns do not split in 2 phases: blocks of 2 columns
    (13, [16, 6, 5, 5]),  # an odd width does not divide into blocks: left as it is
])
def test_onnx_channels_last_reads_column_blocks_as_channels_where_int8_needs_four(width, first_kernel, tmp_path):
    """6 stacked channels -> 24 or 12 when blocks of columns are read as channels, where the width allows."""
    model = _first_layer_model(width)
    x = np.random.default_rng(1).normal(size=(5, 7, 13, width, 2)).astype("float32")
    outputs, kernels = {}, {}
    for precision, layout in [("fp32", "channels_last"), ("int8", "channels_last"), ("int8", "channels_first")]:
        ctx = make_ctx(tmp_path / precision / layout, "3d", precision, calibration=x)
        path = ctx.out_dir / onnx_exporter.export(model, params=onnx_exporter.Params(conv_layout=layout), ctx=ctx)["model"]
        graph = onnx.load(str(path)).graph
        kernels[precision, layout] = [list(i.dims) for i in graph.initializer if len(i.dims) == 4]
        outputs[precision, layout] = run_onnx(path, x)
    assert kernels["fp32", "channels_last"][0] == first_kernel
    assert kernels["int8", "channels_last"][0] == kernels["fp32", "channels_last"][0]
    assert kernels["int8", "channels_first"][0] == [16, 6, 5, 5]  # only channels last pairs columns
    assert kernels["fp32", "channels_last"][1] == [16, 48, 3, 3]  # 48 channels: left as they are
    np.testing.assert_array_less(np.abs(outputs["fp32", "channels_last"] - run_keras(model, x)), 1e-5)
    # INT8: the same integer products; the faster kernel may round the requantised outputs differently
    np.testing.assert_array_less(np.abs(outputs["int8", "channels_last"] - outputs["int8", "channels_first"]), 2e-2)


def test_keras_rewrite_is_exact(x):
    model = _model()
    copy, replaced = with_conv3d_as_2d(model)
    assert replaced == 3
    assert not any(type(layer).__name__ == "Conv3D" for layer in copy.layers)
    np.testing.assert_array_less(np.abs(run_keras(copy, x) - run_keras(model, x)), 1e-5)
    assert with_conv3d_as_2d(_model(padding="same"))[1] == 2


@pytest.mark.parametrize("precision", ["fp32", "int8"])
def test_tflite_gets_conv2d_kernels(precision, x, tmp_path):
    from gaitrun.export.parity import _tflite_interpreter

    model = _model()
    ctx = make_ctx(tmp_path, "3d", precision, calibration=x if precision == "int8" else None)
    path = tmp_path / tflite.export(model, params=tflite.Params(), ctx=ctx)["model"]
    interpreter = _tflite_interpreter(path)
    interpreter.allocate_tensors()
    ops = collections.Counter(op["op_name"] for op in interpreter._get_ops_details())
    assert ops["CONV_2D"] == 3 and "CONV_3D" not in ops
    if precision == "fp32":
        np.testing.assert_array_less(np.abs(run_tflite(path, x) - run_keras(model, x)), 1e-5)
    else:  # integer convolutions: only the graph's edges are float
        assert ops["QUANTIZE"] == 1 and ops["DEQUANTIZE"] == 1
