"""The built-in architectures: contract, shapes, one training step, save/load, reference sizes."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from gaitrun import layers
from gaitrun.errors import DataError
from gaitrun.losses import BatchAllTripletLoss
from gaitrun.plugins.architectures import (
    cnn2d_bmvc,
    cnn3d,
    cnn_rnn,
    gaitset,
    har_cnn1d,
    har_lstm,
    simple_cnn,
    transfer,
)
from gaitrun.registry import Registry, registries

CLASSES = 3

# name -> (module, tiny input shape, tiny params)
TINY = {
    "simple_cnn": (simple_cnn, (16, 16, 3), {"width": 0.25, "dense_units": (8,)}),
    "cnn2d_bmvc": (cnn2d_bmvc, (46, 46, 4), {"width": 1 / 32}),
    "cnn3d": (cnn3d, (23, 49, 49, 2), {"width": 1 / 64}),
    "gaitset": (gaitset, (5, 16, 12, 1), {"width": 0.125, "bins": (1, 2, 4)}),
    "cnn_rnn": (cnn_rnn, (4, 16, 16, 3), {"width": 0.125, "dense_units": (8,)}),
    "transfer": (transfer, (32, 32, 3), {"backbone": "mobilenet_v2", "weights": None,
                                         "dense_units": (8,)}),
    "har_cnn1d": (har_cnn1d, (32, 9), {"width": 0.125, "dense_units": (8,)}),
    "har_lstm": (har_lstm, (16, 9), {"width": 0.125, "dense_units": (8,)}),
}


def tiny_model(name: str, **overrides) -> keras.Model:
    module, shape, params = TINY[name]
    return module.build(input_shape=shape, num_classes=CLASSES,
                        params=module.Params(**{**params, **overrides}))


@pytest.fixture(scope="module")
def mobilenet() -> keras.Model:
    """One tiny transfer model (mobilenet_v2, random weights) shared by several tests: building
    a keras.applications backbone is the slow part."""
    return tiny_model("transfer")


def random_batch(shape: tuple[int, ...], n: int = 4, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).random((n, *shape), dtype=np.float32)


@pytest.mark.parametrize("name", sorted(TINY))
def test_plugin_fits_the_architectures_family(name):
    module = TINY[name][0]
    plugin = Registry("architectures").add(name, module)
    assert plugin.params().width == 1.0
    assert plugin.description
    assert registries()["architectures"].get(name).module is module  # listed as a built-in


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(TINY))
def test_trains_one_step_and_survives_a_safe_mode_round_trip(name, tmp_path, request):
    """Eager training keeps this fast (graph-mode inference: the GaitSet frames test)."""
    module, shape, _ = TINY[name]
    model = request.getfixturevalue("mobilenet") if name == "transfer" else tiny_model(name)
    x, y = random_batch(shape), np.array([0, 0, 1, 2])
    if module.EMBEDDING is not None:
        assert module.EMBEDDING in [layer.name for layer in model.layers]
    if name == "gaitset":
        model.compile(optimizer="sgd", loss=BatchAllTripletLoss(margin=0.2), run_eagerly=True)
        assert model.output_shape == (None, 2 * 7, 32)
    else:
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", run_eagerly=True)
        assert model.output_shape == (None, CLASSES)
    history = model.fit(x, y, batch_size=4, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])

    path = tmp_path / f"{name}.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    np.testing.assert_allclose(loaded(x), model(x), rtol=1e-5, atol=1e-6)


def test_reference_sizes_of_the_embedded_gait_models():
    counts = {
        "cnn2d_bmvc": cnn2d_bmvc.build(input_shape=(60, 60, 50), num_classes=150,
                                       params=cnn2d_bmvc.Params()).count_params(),
        "cnn3d": cnn3d.build(input_shape=(25, 60, 60, 2), num_classes=150,
                             params=cnn3d.Params()).count_params(),
        "gaitset": gaitset.build(input_shape=(30, 64, 44, 1), num_classes=74,
                                 params=gaitset.Params()).count_params(),
    }
    assert counts == {"cnn2d_bmvc": 6_982_774, "cnn3d": 10_055_126, "gaitset": 2_595_424}
    for name, reference in (("cnn2d_bmvc", 7.0e6), ("cnn3d", 10e6), ("gaitset", 2.6e6)):
        assert abs(counts[name] - reference) / reference < 0.02, name


def test_embedding_layers_have_the_reference_shapes():
    model_2d = cnn2d_bmvc.build(input_shape=(60, 60, 50), num_classes=150, params=cnn2d_bmvc.Params())
    model_3d = cnn3d.build(input_shape=(25, 60, 60, 2), num_classes=150, params=cnn3d.Params())
    model_gs = gaitset.build(input_shape=(30, 64, 44, 1), num_classes=74, params=gaitset.Params())
    assert model_2d.get_layer("embedding").output.shape == (None, 1024)
    assert model_3d.get_layer("embedding").output.shape == (None, 1, 1, 1, 1024)
    assert model_gs.get_layer("embedding").output.shape == (None, 62, 256)
    assert model_gs.get_layer("embedding").kernel.shape == (62, 128, 256)


def test_width_scales_filters_and_units():
    model = cnn2d_bmvc.build(input_shape=(60, 60, 50), num_classes=10,
                             params=cnn2d_bmvc.Params(width=0.5))
    assert [model.get_layer(f"conv{i}").filters for i in range(1, 5)] == [48, 96, 256, 256]
    assert model.get_layer("embedding").units == 512
    tiny = tiny_model("cnn3d", width=0.001)
    assert tiny.get_layer("conv1").filters == 1


def test_too_small_inputs_are_refused_with_the_layer_name():
    with pytest.raises(ValueError, match="pool4"):
        cnn2d_bmvc.build(input_shape=(45, 45, 50), num_classes=3, params=cnn2d_bmvc.Params(width=0.1))
    with pytest.raises(ValueError, match="conv6"):
        cnn3d.build(input_shape=(22, 60, 60, 2), num_classes=3, params=cnn3d.Params(width=0.1))
    with pytest.raises(ValueError, match="not divisible"):
        tiny_model("gaitset", bins=(1, 3))


def test_gaitset_takes_any_number_of_frames_and_ignores_their_order():
    model = tiny_model("gaitset")
    frames = random_batch((9, 16, 12, 1), n=2, seed=1)
    for count in (1, 3, 9):
        assert model.predict(frames[:, :count], verbose=0).shape == (2, 14, 32)
    shuffled = frames[:, np.random.default_rng(2).permutation(9)]
    np.testing.assert_allclose(model.predict(shuffled, verbose=0), model.predict(frames, verbose=0),
                               rtol=1e-5, atol=1e-6)


@pytest.mark.slow
def test_gaitset_ce_head_trains_with_triplet_and_cross_entropy():
    model = tiny_model("gaitset", ce_head=True)
    model.compile(optimizer="sgd", loss={"embedding": BatchAllTripletLoss(),
                                         "logits": "sparse_categorical_crossentropy"},
                  run_eagerly=True)
    y = np.array([0, 0, 1, 1])
    history = model.fit(random_batch(TINY["gaitset"][1]), {"embedding": y, "logits": y}, verbose=0)
    assert set(history.history) >= {"embedding_loss", "logits_loss"}
    outputs = model.predict(random_batch((7, 16, 12, 1), n=2), verbose=0)
    assert outputs["embedding"].shape == (2, 14, 32) and outputs["logits"].shape == (2, CLASSES)


def test_transfer_backbone_loads_a_local_weights_file(tmp_path, mobilenet):
    backbone = mobilenet.get_layer("backbone")
    first_kernel = backbone.weights[0]
    first_kernel.assign(np.full(first_kernel.shape, 0.125, dtype="float32"))  # not a random init
    path = tmp_path / "backbone.weights.h5"
    backbone.save_weights(path)
    loaded = tiny_model("transfer", weights=str(path)).get_layer("backbone")
    for a, b in zip(backbone.weights, loaded.weights, strict=True):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_transfer_weights_errors_name_the_file(tmp_path):
    missing = tmp_path / "nope.weights.h5"
    with pytest.raises(DataError, match="no such weights file") as info:
        tiny_model("transfer", weights=str(missing))
    assert info.value.path == str(missing)
    corrupt = tmp_path / "corrupt.weights.h5"
    corrupt.write_bytes(b"not an h5 file")
    with pytest.raises(DataError, match="not an HDF5 weights file"):
        tiny_model("transfer", weights=str(corrupt))


def test_transfer_imagenet_download_failure_says_what_to_do():
    try:
        tiny_model("transfer", weights="imagenet")
    except DataError as exc:
        assert "model.params.weights" in str(exc)
    else:
        pytest.skip("the ImageNet weights are reachable (cached or online) here")


def test_transfer_freeze_then_unfreeze_keeps_batch_norm_frozen(mobilenet):
    model = mobilenet  # head_epochs > 0: built with the backbone frozen
    transfer.set_trainable(model, unfreeze_top=0)
    backbone = model.get_layer("backbone")
    assert not backbone.trainable and model.get_layer("logits").trainable
    transfer.set_trainable(model, unfreeze_top=10)
    top = backbone.layers[-10:]
    assert all(layer.trainable != isinstance(layer, keras.layers.BatchNormalization) for layer in top)
    assert not any(layer.trainable for layer in backbone.layers[:-10])
    transfer.set_trainable(model, unfreeze_top=None)
    convs = [layer for layer in backbone.layers if isinstance(layer, keras.layers.Conv2D)]
    assert all(layer.trainable for layer in convs)
    assert not any(layer.trainable for layer in backbone.layers
                   if isinstance(layer, keras.layers.BatchNormalization))


def test_transfer_preprocessing_matches_keras_applications(mobilenet):
    images = random_batch((32, 32, 3), n=2)
    model = mobilenet  # inputs in 0..1
    expected = keras.applications.mobilenet_v2.preprocess_input(images * 255.0)
    np.testing.assert_allclose(model.get_layer("preprocess")(images), expected, rtol=1e-5, atol=1e-5)
    caffe = layers.CaffePreprocess(255.0)(images)
    expected = keras.applications.resnet50.preprocess_input(images * 255.0)
    np.testing.assert_allclose(caffe, expected, rtol=1e-5, atol=1e-4)
    for constructor, _ in transfer.BACKBONES.values():
        assert callable(getattr(keras.applications, constructor))


def test_transfer_from_scratch_trains_everything():
    """Random weights: no frozen head phase, BatchNormalization learns its statistics."""
    import keras

    assert transfer.head_phase(transfer.Params(backbone="mobilenet_v2", weights=None, head_epochs=3)) is None
    phase = transfer.head_phase(transfer.Params(backbone="mobilenet_v2", weights="w.h5", head_epochs=3,
                                                finetune_lr_factor=0.5, unfreeze_top=4))
    assert (phase.epochs, phase.lr_factor, phase.unfreeze.keywords) == (3, 0.5, {"unfreeze_top": 4})
    backbone = tiny_model("transfer").get_layer("backbone")  # fresh: other tests re-freeze the shared one
    bns = [layer for layer in backbone.layers if isinstance(layer, keras.layers.BatchNormalization)]
    assert backbone.trainable and bns and all(layer.trainable for layer in bns)
