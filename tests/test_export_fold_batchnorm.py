"""Folding a BatchNormalization's scale and shift into the convolution before it, in the ONNX
export: outputs unchanged, no Mul/Add left after the convolutions, and with conv3d_as_2d the
frame-major layout kept from one convolution to the next."""

from __future__ import annotations

from collections import Counter

import numpy as np
import onnx
import pytest

from gaitrun.export.onnx_convert import keras_to_onnx
from gaitrun.export.parity import run_keras, run_onnx

pytestmark = pytest.mark.slow


def _cnn3d_with_batchnorm():
    """The cnn3d architecture at a small width, fitted for a step (Keras' exporter leaves the
    BatchNorm of a fitted model as Mul and Add; of a freshly built one, tf2onnx folds it itself),
    with BatchNorm statistics and affine parameters far from the identity, as a trained net has."""
    import keras

    from gaitrun.plugins.architectures import cnn3d

    keras.utils.set_random_seed(5)
    model = cnn3d.build(input_shape=(23, 49, 49, 2), num_classes=3,
                        params=cnn3d.Params(width=1 / 16, batch_norm=True))
    rng = np.random.default_rng(6)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    model.fit(rng.normal(size=(4, 23, 49, 49, 2)).astype("float32"), np.zeros(4), epochs=1, verbose=0)
    for bn in [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]:
        n = bn.gamma.shape[0]
        bn.gamma.assign(rng.uniform(0.5, 2.0, n).astype("float32"))
        bn.beta.assign(rng.normal(0, 1, n).astype("float32"))
        bn.moving_mean.assign(rng.normal(0, 1, n).astype("float32"))
        bn.moving_variance.assign(rng.uniform(0.2, 3.0, n).astype("float32"))
    return model


def test_batchnorm_after_conv3d_folds_into_it_with_the_same_outputs(tmp_path):
    model = _cnn3d_with_batchnorm()
    x = np.random.default_rng(1).normal(size=(2, *model.input_shape[1:])).astype("float32")
    ops = {}
    for fold in (False, True):
        path = tmp_path / f"fold_{fold}.onnx"
        keras_to_onnx(model, path, input_name="clip", opset=17, conv3d_as_2d=True, fold_linear=fold)
        np.testing.assert_allclose(run_onnx(path, x), run_keras(model, x), atol=1e-5)
        ops[fold] = Counter(n.op_type for n in onnx.load(str(path)).graph.node)
    assert ops[False]["Mul"] >= 6 and ops[False]["Add"] >= 6  # conv1..conv6, each with a BatchNorm
    # every Mul and the six BatchNorm Adds are gone (the Dense layers' bias Adds stay)
    assert ops[True]["Mul"] == 0 and ops[True]["Add"] == ops[False]["Add"] - 6
    assert ops[True]["Conv"] == ops[False]["Conv"]
    # Conv -> Relu now, so the rewrite stays frame-major from one convolution to the next
    assert ops[True]["Transpose"] <= ops[False]["Transpose"] - 6


def _graph(scale_shape: tuple[int, ...], shift: bool = True):
    """x (1, 3, 5, 5) -> Conv 4x3x3x3 (+bias) -> Mul by a constant of ``scale_shape`` [-> Add]."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(2)
    inits = [numpy_helper.from_array(rng.normal(size=(4, 3, 3, 3)).astype(np.float32), "w"),
             numpy_helper.from_array(rng.normal(size=4).astype(np.float32), "b"),
             numpy_helper.from_array(rng.uniform(0.5, 2, scale_shape).astype(np.float32), "s"),
             numpy_helper.from_array(rng.normal(size=(1, 4, 1, 1)).astype(np.float32), "t")]
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c"], name="conv"),
             helper.make_node("Mul", ["s", "c"], ["m" if shift else "y"], name="mul")]
    if shift:
        nodes.append(helper.make_node("Add", ["m", "t"], ["y"], name="add"))
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 5, 5])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 3, 3])], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


@pytest.mark.parametrize(("scale_shape", "shift", "folded"), [
    ((1, 4, 1, 1), True, 2),   # per channel, as Keras' exporter writes it
    ((4, 1, 1), False, 1),     # per channel without the batch axis, no shift after it
    ((1, 1, 1, 3), True, 0),   # per column: not a channel scale, left alone (and the Add after it)
])
def test_only_per_channel_scales_and_shifts_fold(tmp_path, scale_shape, shift, folded):
    from gaitrun.export.fold_batchnorm import fold_conv_scale_shift

    x = np.random.default_rng(3).normal(size=(1, 3, 5, 5)).astype(np.float32)
    before, after = tmp_path / "before.onnx", tmp_path / "after.onnx"
    proto = _graph(scale_shape, shift)
    onnx.save(proto, str(before))
    assert fold_conv_scale_shift(proto) == folded
    onnx.checker.check_model(proto)
    onnx.save(proto, str(after))
    assert Counter(n.op_type for n in proto.graph.node)["Conv"] == 1
    assert len(proto.graph.node) == 1 + (1 + shift) - folded
    np.testing.assert_allclose(run_onnx(after, x), run_onnx(before, x), rtol=1e-5, atol=1e-5)
