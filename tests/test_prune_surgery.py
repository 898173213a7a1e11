"""Filter surgery on the built-in architectures: removing zeroed filters changes no output.

For each model the filters about to go are zeroed first (kernel and bias; a following
BatchNormalization gets gamma = beta = 0 on those channels), so they contribute exactly
nothing; the smaller model must then compute the same outputs, have the parameter count
worked out independently from the layer shapes, and save/load with safe_mode=True.
"""

from __future__ import annotations

import math
import warnings

import keras
import numpy as np
import pytest

import gaitrun.layers  # noqa: F401  (registers the custom layers)
from gaitrun.plugins.architectures import cnn2d_bmvc, cnn3d, cnn_rnn, gaitset, simple_cnn
from gaitrun.plugins.pruners.l1_percentile import Params as PercentileParams
from gaitrun.prune import count_flops, plot_filters_kept, prune_model, prune_model_to
from gaitrun.prune.graph import analyse

CASES = {  # name -> (module, input shape, params)
    "simple_cnn": (simple_cnn, (16, 16, 3), simple_cnn.Params(width=0.125, batch_norm=True)),
    "cnn2d_bmvc": (cnn2d_bmvc, (60, 60, 50), cnn2d_bmvc.Params(width=0.0625)),
    "cnn3d": (cnn3d, (25, 60, 60, 2), cnn3d.Params(width=0.0625, batch_norm=True)),
    "cnn_rnn": (cnn_rnn, (3, 16, 16, 1), cnn_rnn.Params(width=0.125)),
    "gaitset": (gaitset, (3, 32, 22, 1), gaitset.Params(width=0.125, bins=(1, 2, 4))),
}


def build(name: str):
    module, shape, params = CASES[name]
    keras.utils.set_random_seed(1)
    model = module.build(input_shape=shape, num_classes=5, params=params)
    randomise_biases_and_bn(model, np.random.default_rng(2))
    return model, shape


def randomise_biases_and_bn(model, rng) -> None:
    """Non-zero biases and BN statistics, so a misaligned channel would show in the outputs."""
    for layer in model.layers:
        weights = layer.get_weights()
        if isinstance(layer, keras.layers.BatchNormalization):
            weights = [rng.uniform(0.5, 1.5, w.shape).astype("float32") for w in weights]
        elif len(weights) == 2 and weights[1].ndim == 1:
            weights[1] = rng.normal(0, 0.1, weights[1].shape).astype("float32")
        layer.set_weights(weights)


def choose_keep(model, rng) -> dict[str, np.ndarray]:
    """About half the filters of every prunable conv; convs joined by an add keep the same."""
    keep = {}
    for group in analyse(model, protected={"embedding"}).groups:
        n = model.get_layer(group[0]).filters
        kept = np.sort(rng.choice(n, size=max(1, n // 2), replace=False))
        keep.update({name: kept for name in group})
    return keep


def zero_removed_filters(model, keep: dict[str, np.ndarray]) -> None:
    """Make the filters outside ``keep`` output exactly 0 (also after a following bn{i}, and
    after cnn_rnn's frame_bn, which follows the last conv)."""
    names = {layer.name for layer in model.layers}
    last = max((n for n in names if n[:4] == "conv" and n[4:].isdigit()), key=lambda n: int(n[4:]), default=None)
    for name, kept in keep.items():
        conv = model.get_layer(name)
        gone = np.setdiff1d(np.arange(getattr(conv, "layer", conv).filters), kept)
        kernel, bias = conv.get_weights()
        kernel[..., gone], bias[gone] = 0.0, 0.0
        conv.set_weights([kernel, bias])
        for bn_name in [name.replace("conv", "bn"), *(["frame_bn"] if name == last else [])]:
            if bn_name in names:
                gamma, beta, mean, var = model.get_layer(bn_name).get_weights()
                gamma[gone], beta[gone] = 0.0, 0.0
                model.get_layer(bn_name).set_weights([gamma, beta, mean, var])


def expected_chain_params(model, keep: dict[str, np.ndarray]) -> int:
    """Parameters after pruning a plain chain of layers, from the layer shapes alone."""
    total, channels = 0, None
    for layer in model.layers:
        if isinstance(layer, keras.layers.InputLayer):
            channels = layer.output.shape[-1]
        elif isinstance(layer, keras.layers.Conv1D | keras.layers.Conv2D | keras.layers.Conv3D):
            out = len(keep.get(layer.name, range(layer.filters)))
            total += math.prod(layer.kernel_size) * channels * out + out
            channels = out
        elif isinstance(layer, keras.layers.BatchNormalization):
            total += 4 * channels
        elif isinstance(layer, keras.layers.Flatten):
            channels *= math.prod(layer.input.shape[1:-1])
        elif isinstance(layer, keras.layers.Dense):
            total += channels * layer.units + layer.units
            channels = layer.units
        elif isinstance(layer, keras.layers.LSTM):
            total += 4 * layer.units * (channels + layer.units + 1)
            channels = layer.units
    return total


def expected_gaitset_params(model, keep: dict[str, np.ndarray]) -> int:
    """GaitSet's parameters after pruning, worked out layer by layer (3x3 convs but conv1 5x5)."""
    n = {layer.name: len(keep.get(layer.name, range(layer.filters)))
         for layer in model.layers if isinstance(layer, keras.layers.Conv2D)}

    def conv(k: int, c_in: int, c_out: int) -> int:
        return k * k * c_in * c_out + c_out

    strips, units = model.get_layer("embedding").kernel.shape[::2]
    assert n["set_conv4"] == n["gl_conv2"] and n["set_conv6"] == n["gl_conv4"]
    return (conv(5, 1, n["set_conv1"]) + conv(3, n["set_conv1"], n["set_conv2"])
            + conv(3, n["set_conv2"], n["gl_conv1"]) + conv(3, n["gl_conv1"], n["gl_conv2"])
            + conv(3, n["set_conv2"], n["set_conv3"]) + conv(3, n["set_conv3"], n["set_conv4"])
            + conv(3, n["set_conv4"], n["gl_conv3"]) + conv(3, n["gl_conv3"], n["gl_conv4"])
            + conv(3, n["set_conv4"], n["set_conv5"]) + conv(3, n["set_conv5"], n["set_conv6"])
            + strips * n["set_conv6"] * units)


def outputs(model, x) -> np.ndarray:
    return model(x, training=False).numpy()


@pytest.mark.parametrize("name", list(CASES))
def test_removing_zeroed_filters_changes_nothing(name, tmp_path):
    model, shape = build(name)
    keep = choose_keep(model, np.random.default_rng(3))
    zero_removed_filters(model, keep)
    smaller, report = prune_model_to(model, keep)

    x = np.random.default_rng(4).normal(size=(2, *shape)).astype("float32")
    assert np.max(np.abs(outputs(smaller, x) - outputs(model, x))) < 1e-5
    expected = (expected_gaitset_params if name == "gaitset" else expected_chain_params)(model, keep)
    assert smaller.count_params() == expected == report["totals"]["params"]["after"]
    assert smaller.count_params() < model.count_params()
    for layer, kept in keep.items():
        assert smaller.get_layer(layer).filters == len(kept) == report["layers"][layer]["filters_after"]
        assert report["layers"][layer]["kept"] == kept.tolist()
    assert report["totals"]["flops"]["after"] < report["totals"]["flops"]["before"]

    smaller.save(tmp_path / "pruned.keras")
    loaded = keras.saving.load_model(tmp_path / "pruned.keras", safe_mode=True)
    assert np.max(np.abs(outputs(loaded, x) - outputs(smaller, x))) < 1e-6


def test_the_embedding_and_the_output_are_never_pruned():
    model, _ = build("cnn3d")
    assert analyse(model).skipped == {}  # nothing protected: the embedding conv could go
    graph = analyse(model, protected={"embedding": "the embedding layer"})
    assert graph.skipped == {"embedding": "the embedding layer"}
    with pytest.raises(ValueError, match="protected by the architecture"):
        prune_model_to(model, {"embedding": [0]}, protected={"embedding"})
    with pytest.raises(ValueError, match="'logits'"):
        prune_model_to(model, {"logits": [0]})
    with pytest.raises(ValueError, match="distinct indices"):
        prune_model_to(model, {"conv1": [0, 0]})


def test_percentile_pruning_report_and_plot(tmp_path):
    model, shape = build("cnn3d")
    params = PercentileParams(percentile=40, scope="per_layer", granularity=2, exclude=["conv6"])
    smaller, report = prune_model(model, **params.model_dump())
    assert "conv6" not in report["layers"] and report["skipped"]["conv6"] == "excluded"
    for name, entry in report["layers"].items():
        assert smaller.get_layer(name).filters == entry["filters_after"]
        assert entry["filters_after"] % 2 == 0 or entry["filters_after"] == entry["filters_before"]
        assert entry["filters_after"] < entry["filters_before"]
        assert entry["threshold"] is not None
    totals = report["totals"]
    assert totals["params"] == {"before": model.count_params(), "after": smaller.count_params()}
    assert totals["flops"]["after"] == count_flops(smaller) < count_flops(model)
    assert report["settings"]["percentile"] == 40
    png = plot_filters_kept(report, tmp_path / "plots" / "filters.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    untouched, report0 = prune_model(model, percentile=0)
    assert untouched.count_params() == model.count_params()
    x = np.random.default_rng(0).normal(size=(1, *shape)).astype("float32")
    assert np.max(np.abs(outputs(untouched, x) - outputs(model, x))) < 1e-6


def test_percentile_pruning_keeps_added_convs_aligned():
    model, shape = build("gaitset")
    smaller, report = prune_model(model, percentile=50, normalise="max", protected={"embedding"})
    assert sorted(map(sorted, report["groups"])) == [["gl_conv2", "set_conv4"], ["gl_conv4", "set_conv6"]]
    for a, b in report["groups"]:
        assert report["layers"][a]["kept"] == report["layers"][b]["kept"]
    assert report["totals"]["filters"]["after"] < report["totals"]["filters"]["before"]
    x = np.random.default_rng(0).normal(size=(1, *shape)).astype("float32")
    assert outputs(smaller, x).shape == outputs(model, x).shape


def test_flops_of_a_small_cnn_by_hand():
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(4, 3, padding="valid")(inputs)  # 6x6 positions x (3x3x3x4)
    x = keras.layers.Flatten()(x)
    outputs_ = keras.layers.Dense(5)(x)  # 144 x 5
    model = keras.Model(inputs, outputs_)
    assert count_flops(model) == 2 * (36 * 108 + 144 * 5)


def small_model(kind: str):
    """Hand-made graphs: TimeDistributed convs + LSTM, a channel concatenation, a residual add."""
    keras.utils.set_random_seed(5)
    L = keras.layers
    if kind == "time_distributed":
        inputs = keras.Input((3, 8, 8, 2))
        x = L.TimeDistributed(L.Conv2D(6, 3, padding="same"), name="conv1")(inputs)
        x = L.BatchNormalization(name="bn1")(x)
        x = L.TimeDistributed(L.MaxPooling2D(2), name="pool1")(x)
        x = L.TimeDistributed(L.Flatten(), name="flat")(x)
        x = L.LSTM(4, name="rnn")(x)
        return keras.Model(inputs, L.Dense(3, name="out")(x))
    inputs = keras.Input((8, 8, 3))
    b = L.Conv2D(5, 3, padding="same", name="conv_b")(inputs)
    if kind == "concat":
        a = L.Conv2D(4, 3, padding="same", name="conv_a")(inputs)
        x = L.Concatenate(name="cat")([a, L.ReLU(name="relu_b")(b)])
        x = L.Conv2D(3, 1, name="conv_c")(x)
    else:
        x = L.Add(name="residual")([inputs, L.Conv2D(3, 3, padding="same", name="conv_r")(b)])
    return keras.Model(inputs, L.Dense(2, name="out")(L.GlobalAveragePooling2D(name="gap")(x)))


@pytest.mark.parametrize("kind, keep", [
    ("time_distributed", {"conv1": [1, 2, 5]}),
    ("concat", {"conv_a": [0, 3], "conv_b": [1, 2, 4]}),
])
def test_hand_made_graphs(kind, keep):
    model = small_model(kind)
    keep = {k: np.array(v) for k, v in keep.items()}
    randomise_biases_and_bn(model, np.random.default_rng(6))
    zero_removed_filters(model, keep)
    smaller, _ = prune_model_to(model, keep)
    x = np.random.default_rng(7).normal(size=(2, *model.input.shape[1:])).astype("float32")
    assert np.max(np.abs(outputs(smaller, x) - outputs(model, x))) < 1e-5
    assert smaller.count_params() < model.count_params()


def test_a_conv_added_to_its_input_is_skipped_with_a_warning():
    model = small_model("residual")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        graph = analyse(model)
    assert "conv_r" in graph.skipped and "residual" in graph.skipped["conv_r"]
    assert any("conv_r" in str(w.message) for w in caught)
    assert set(graph.convs) == {"conv_b"}
