"""Folding consecutive linear layers in the ONNX export: outputs unchanged, fewer matrices, and
only where it is valid and cheaper."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from gaitrun.export import ExportContext
from gaitrun.export.fold_linear import fold_linear_chains
from gaitrun.export.onnx_convert import keras_to_onnx
from gaitrun.export.parity import run_keras, run_onnx
from gaitrun.plugins.exporters import onnx as onnx_exporter

pytestmark = pytest.mark.slow


def _randomise_biases(model, seed: int) -> None:
    """Non-zero biases, as a trained net has (the converter drops zero ones)."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if getattr(layer, "bias", None) is not None:
            layer.bias.assign(rng.normal(scale=0.5, size=layer.bias.shape).astype("float32"))


def _head(second_bias: bool):
    """30 -> fc1 64 (linear) -> dropout -> embedding 16 (linear) -> fc2 16 (ReLU) -> softmax 3."""
    import keras

    keras.utils.set_random_seed(3)
    inp = keras.Input((30,), name="features")
    h = keras.layers.Dense(64, name="fc1")(inp)
    h = keras.layers.Dropout(0.4)(h)
    h = keras.layers.Dense(16, use_bias=second_bias, name="embedding")(h)
    h = keras.layers.Dense(16, activation="relu", name="fc2")(h)
    out = keras.layers.Dense(3, activation="softmax", name="logits")(h)
    model = keras.Model(inp, out)
    _randomise_biases(model, 4)
    return model


def _ctx(out_dir, input_name: str) -> ExportContext:
    return ExportContext(out_dir=out_dir, precision="fp32", batch_sizes=(1, 4), calibration=np.zeros((0,)),
                         input_name=input_name, labels=["a", "b", "c"], normalisation={"mean": 0.0, "std": 1.0},
                         strict=False)


def _matrices(path) -> list[list[int]]:
    graph = onnx.load(str(path)).graph
    dims = {i.name: list(i.dims) for i in graph.initializer}
    return [dims[n.input[1]] for n in graph.node if n.op_type == "MatMul"]


@pytest.mark.parametrize("second_bias", [True, False])
def test_linear_chain_folds_into_one_matrix_with_the_same_outputs(tmp_path, second_bias):
    model = _head(second_bias)
    x = np.random.default_rng(1).normal(size=(4, 30)).astype("float32")
    paths = {}
    for fold in (False, True):
        out = tmp_path / str(fold)
        paths[fold] = out / onnx_exporter.export(model, params=onnx_exporter.Params(fold_linear=fold),
                                                 ctx=_ctx(out, "features"))["model"]
    assert _matrices(paths[False]) == [[30, 64], [64, 16], [16, 16], [16, 3]]
    # fc1, embedding and fc2's matrix become one 30x16; the ReLU keeps the softmax layer apart
    assert _matrices(paths[True]) == [[30, 16], [16, 3]]
    graph = onnx.load(str(paths[True])).graph
    assert len({i.name for i in graph.initializer}) == len(graph.initializer)
    assert sum(n.op_type == "Add" for n in graph.node) == 2  # one folded bias, the softmax layer's
    for batch in (1, 4):
        expected = run_keras(model, x[:batch])
        np.testing.assert_array_less(np.abs(run_onnx(paths[True], x[:batch]) - expected), 1e-5)


def test_cnn2d_bmvc_head_folds_and_keeps_its_outputs(tmp_path):
    import keras

    from gaitrun.plugins.architectures import cnn2d_bmvc

    keras.utils.set_random_seed(0)
    model = cnn2d_bmvc.build(input_shape=(46, 46, 50), num_classes=7, params=cnn2d_bmvc.Params(width=0.25))
    _randomise_biases(model, 5)
    path = tmp_path / "m.onnx"
    keras_to_onnx(model, path, input_name="flow", opset=13, pad_channels=True, fold_linear=True)
    conv4 = model.get_layer("conv4").filters
    assert _matrices(path) == [[conv4, model.get_layer("fc2").units], [model.get_layer("fc2").units, 7]]
    x = np.random.default_rng(2).normal(size=(3, 46, 46, 50)).astype("float32")
    np.testing.assert_array_less(np.abs(run_onnx(path, x) - run_keras(model, x)), 1e-5)


def _unfolded(tmp_path, model, name: str):
    path = tmp_path / f"{name}.onnx"
    keras_to_onnx(model, path, input_name="features", opset=13)
    return onnx.load(str(path)), path


def test_a_widening_chain_is_kept(tmp_path):
    """30 -> 4 -> 64: one 30x64 matrix would cost more than 30x4 and 4x64."""
    import keras

    keras.utils.set_random_seed(7)
    inp = keras.Input((30,), name="features")
    out = keras.layers.Dense(64)(keras.layers.Dense(4)(inp))
    proto, _ = _unfolded(tmp_path, keras.Model(inp, out), "widening")
    assert fold_linear_chains(proto) == 0


def test_a_tensor_read_elsewhere_is_kept(tmp_path):
    """A model that outputs its embedding keeps it: only fc1 -> embedding folds, not embedding -> fc2."""
    import keras

    keras.utils.set_random_seed(8)
    inp = keras.Input((30,), name="features")
    embedding = keras.layers.Dense(16, name="embedding")(keras.layers.Dense(64, name="fc1")(inp))
    scores = keras.layers.Dense(8, name="fc2")(embedding)
    model = keras.Model(inp, [scores, embedding])
    _randomise_biases(model, 9)
    proto, path = _unfolded(tmp_path, model, "two_outputs")
    assert fold_linear_chains(proto) == 1
    onnx.checker.check_model(proto)
    folded = tmp_path / "folded.onnx"
    onnx.save(proto, str(folded))
    x = np.random.default_rng(3).normal(size=(5, 30)).astype("float32")
    before = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"features": x})
    after = ort.InferenceSession(str(folded), providers=["CPUExecutionProvider"]).run(None, {"features": x})
    assert len(after) == 2
    for a, b in zip(before, after, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)
