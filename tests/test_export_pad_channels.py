"""Zero-padding conv input channels to a multiple of 8: exact, only where it helps, and on by default."""

from __future__ import annotations

import numpy as np
import onnx
import pytest

from gaitrun.export import ExportContext
from gaitrun.export.pad_channels import pad_conv_inputs
from gaitrun.export.parity import run_keras, run_onnx
from gaitrun.plugins.exporters import onnx as onnx_exporter

pytestmark = pytest.mark.slow

SHAPE = (11, 10, 50)  # 50 stacked channels, as cnn2d_bmvc's optical flow


def _model():
    """Conv input channels 50 (model input: padded), 13 (after a Conv, Relu and pooling: the producer
    gets zero filters), 11 (after a BatchNorm: padded), 5 (below a block: kept), a depthwise conv."""
    import keras

    keras.utils.set_random_seed(5)
    inp = keras.Input(SHAPE, name="flow")
    h = keras.layers.Conv2D(13, 3, activation="relu")(inp)
    h = keras.layers.MaxPooling2D(2, padding="same")(h)
    h = keras.layers.Conv2D(11, 3, padding="same", activation="relu")(h)
    h = keras.layers.BatchNormalization()(h)
    h = keras.layers.Conv2D(5, 1, activation="relu")(h)
    h = keras.layers.Conv2D(6, 3, padding="same")(h)
    h = keras.layers.DepthwiseConv2D(3, padding="same")(h)
    out = keras.layers.Dense(3, activation="softmax")(keras.layers.Flatten()(h))
    return keras.Model(inp, out)


def _model3d():
    """Conv3Ds as a pruned net has them (7 and 5 filters); with kt = 3 and 2 the frame-stacked inputs
    need 8 and 4 channels per frame."""
    import keras

    keras.utils.set_random_seed(6)
    inp = keras.Input((6, 9, 8, 3), name="clip")
    h = keras.layers.Conv3D(7, 2, activation="relu")(inp)
    h = keras.layers.Conv3D(5, 3, activation="relu")(h)
    h = keras.layers.Conv3D(4, (2, 1, 1))(h)
    out = keras.layers.Dense(3, activation="softmax")(keras.layers.Flatten()(h))
    return keras.Model(inp, out)


def _conv_shapes(path) -> list[tuple[int, int]]:
    """(filters, input channels) of every Conv."""
    graph = onnx.load(str(path)).graph
    weights = {i.name: list(i.dims) for i in graph.initializer}
    return [tuple(weights[n.input[1]][:2]) for n in graph.node if n.op_type == "Conv"]


def _ctx(out_dir, precision: str, calibration: np.ndarray) -> ExportContext:
    return ExportContext(out_dir=out_dir, precision=precision, batch_sizes=(1, 4), calibration=calibration,
                         input_name="flow", labels=["a", "b", "c"], normalisation={"mean": 0.0, "std": 1.0},
                         strict=False)


@pytest.fixture(scope="module")
def x():
    return np.random.default_rng(1).normal(size=(4, *SHAPE)).astype("float32")


@pytest.mark.parametrize("pad", [True, False])
def test_padding_is_exact_and_only_where_channels_miss_a_block(x, tmp_path, pad):
    model = _model()
    params = onnx_exporter.Params(pad_channels="always" if pad else "never")
    path = tmp_path / onnx_exporter.export(model, params=params, ctx=_ctx(tmp_path, "fp32", x[:0]))["model"]
    expected = [(16, 56), (11, 16), (5, 16), (6, 5), (6, 1)] if pad else [(13, 50), (11, 13), (5, 11), (6, 5), (6, 1)]
    assert _conv_shapes(path) == expected
    graph = onnx.load(str(path)).graph
    assert sum(n.op_type == "Pad" for n in graph.node) == (2 if pad else 0)
    assert len({i.name for i in graph.initializer}) == len(graph.initializer)  # old kernels dropped, no clashes
    for batch in (1, 4):
        np.testing.assert_array_less(np.abs(run_onnx(path, x[:batch]) - run_keras(model, x[:batch])), 1e-5)


def test_the_model_input_is_padded_before_its_transpose_which_onnxruntime_then_folds(x, tmp_path):
    """Keras models are channels-last: the converter transposes the input to NCHW. The zero channels
    go on the NHWC side, so ONNX Runtime's blocked layout reads the input in one reorder."""
    import onnxruntime as ort

    path = tmp_path / onnx_exporter.export(_model(), params=onnx_exporter.Params(pad_channels="always"),
                                           ctx=_ctx(tmp_path, "fp32", x[:0]))["model"]
    graph = onnx.load(str(path)).graph
    first, second = graph.node[0], graph.node[1]
    assert (first.op_type, first.input[0]) == ("Pad", "flow")
    assert (second.op_type, second.input[0]) == ("Transpose", first.output[0])
    options = ort.SessionOptions()
    options.optimized_model_filepath = str(tmp_path / "optimized.onnx")
    ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    optimized = onnx.load(options.optimized_model_filepath).graph
    if not any(n.op_type == "ReorderInput" for n in optimized.node):
        pytest.skip("this CPU has no ONNX Runtime blocked (NCHWc) convolution")
    readers = [n for n in optimized.node if first.output[0] in n.input]
    assert [n.op_type for n in readers] == ["ReorderInput"]  # the Transpose is gone
    assert any(a.name == "channels_last" and a.i == 1 for a in readers[0].attribute)


def test_conv3d_channels_are_padded_for_the_frame_stacked_conv2d(tmp_path):
    model = _model3d()
    x = np.random.default_rng(2).normal(size=(3, 6, 9, 8, 3)).astype("float32")
    ctx = ExportContext(out_dir=tmp_path, precision="fp32", batch_sizes=(1, 3), calibration=x[:0],
                        input_name="clip", labels=["a", "b", "c"], normalisation={"mean": 0.0, "std": 1.0},
                        strict=False)
    path = tmp_path / onnx_exporter.export(model, params=onnx_exporter.Params(pad_channels="always"),
                                           ctx=ctx)["model"]
    # 2-D convs over stacked frames: 2 x 3 input channels (below a block), 3 x 8 (was 3 x 7), 2 x 8 (was 2 x 5)
    assert _conv_shapes(path) == [(8, 6), (8, 24), (4, 16)]
    assert "Pad" not in [n.op_type for n in onnx.load(str(path)).graph.node]
    for batch in (1, 3):
        np.testing.assert_array_less(np.abs(run_onnx(path, x[:batch]) - run_keras(model, x[:batch])), 1e-5)


def test_int8_graphs_are_not_padded(x, tmp_path):
    """ONNX Runtime's INT8 convolutions do not use the blocked layout; a padded u8 input would need the zero point."""
    path = tmp_path / onnx_exporter.export(_model(), params=onnx_exporter.Params(),
                                           ctx=_ctx(tmp_path, "int8", x))["model"]
    ops = [n.op_type for n in onnx.load(str(path)).graph.node]
    assert "QuantizeLinear" in ops and "Pad" not in ops


def test_a_kernel_shared_by_two_convs_is_padded_for_each_and_dropped_once():
    from onnx import TensorProto, helper, numpy_helper

    w = numpy_helper.from_array(np.random.default_rng(0).normal(size=(4, 12, 1, 1)).astype("float32"), "w")
    nodes = [helper.make_node("Conv", ["x", "w"], ["a"]), helper.make_node("Conv", ["x", "w"], ["b"]),
             helper.make_node("Add", ["a", "b"], ["y"])]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 12, 3, 3])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 3, 3])], [w])
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=8)
    before = _run(proto)
    assert pad_conv_inputs(proto) == 2
    onnx.checker.check_model(proto)
    assert "w" not in {i.name for i in proto.graph.initializer}
    np.testing.assert_allclose(_run(proto), before, atol=1e-6)


def _run(proto):
    import onnxruntime as ort

    session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {"x": np.arange(108, dtype="float32").reshape(1, 12, 3, 3) / 50})[0]


def test_measured_padding_keeps_exactly_the_paddings_that_made_the_graph_faster(x, tmp_path):
    """The default policy times the graph with and without each candidate padding in ONNX Runtime
    and keeps a padding only when the graph got faster: the exported graph matches what
    ``export.json`` says was measured, and stays exact."""
    from gaitrun.export.pad_policy import GAIN

    model = _model()
    result = onnx_exporter.export(model, params=onnx_exporter.Params(), ctx=_ctx(tmp_path, "fp32", x[:0]))
    padding = result["padding"]
    assert len(padding) == 3  # the 50-channel input, and the convs after 13 and 11 filters
    for measured in padding.values():
        assert measured["time_ratio"] > 0 and measured["padded"] == (measured["time_ratio"] < GAIN)
    path = tmp_path / result["model"]
    padded = sum(m["padded"] for m in padding.values())
    channels_in = [c_in for _, c_in in _conv_shapes(path)[:3]]
    assert sum(c % 8 == 0 for c in channels_in) == padded
    for batch in (1, 4):
        np.testing.assert_array_less(np.abs(run_onnx(path, x[:batch]) - run_keras(model, x[:batch])), 1e-5)
