"""Tests for the built-in augmentations: every layout they support, determinism, flow awareness."""

from __future__ import annotations

import importlib
import math
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
from pydantic import ValidationError

from gaitrun.errors import PluginError
from gaitrun.registry import registries

NAMES = ["flip", "shift", "zoom", "rotate", "shear", "brightness", "contrast", "cutout", "temporal_crop",
         "frame_dropout", "flow_threshold", "jitter", "scaling"]
MODULES = {name: importlib.import_module(f"gaitrun.plugins.augmentations.{name}") for name in NAMES}
CHANNELS = {"silhouette": 1, "optical_flow": 2, "rgb": 3, "inertial": 6}
T, H, W = 4, 12, 10
STRONG = {"frame_dropout": {"rate": 0.9}}  # so that one draw surely changes a 4-frame clip


def sample_shape(layout: str, channels: int) -> tuple[int, ...]:
    return {"image": (H, W, channels), "stack2d": (H, W, T * channels), "inertial": (T * 8, channels)}.get(
        layout, (T, H, W, channels))


def cases() -> list[tuple[str, str, int]]:
    """(augmentation, layout, channels) for every layout and modality each one supports."""
    return [(name, layout, CHANNELS[modality])
            for name, module in MODULES.items()
            for layout in sorted(module.LAYOUTS)
            for modality in sorted(module.MODALITIES)
            if layout != "stack2d" or modality == "optical_flow"]  # stack2d holds flow only


CASES = cases()


def random_samples(name: str, layout: str, channels: int, count: int = 1) -> np.ndarray:
    samples = np.random.default_rng(0).uniform(0.0, 1.0, (count, *sample_shape(layout, channels)))
    return (samples * (2.0 if name == "flow_threshold" else 1.0)).astype(np.float32)  # some < 0.5 px


def run(name: str, x, *, layout: str, seed=(1, 2), **params):
    module = MODULES[name]
    return module.apply(tf.constant(x, tf.float32), params=module.Params(**params),
                        seed=tf.constant(seed, tf.int64), layout=layout).numpy()


def map_dataset(name: str, samples: np.ndarray, *, layout: str, seeds: tuple[int, ...], **params):
    """Augment every sample inside one tf.data map, once per base seed (seed = (base, index))."""
    module = MODULES[name]
    settings = module.Params(**params)

    def augment(index, x):
        return tuple(module.apply(x, params=settings, seed=tf.stack([tf.constant(base, tf.int64), index]),
                                  layout=layout) for base in seeds)

    data = tf.data.Dataset.from_tensor_slices(samples).enumerate().map(augment)
    return [np.stack(column) for column in zip(*data.as_numpy_iterator(), strict=True)]


def test_every_module_is_a_registered_augmentation_plugin() -> None:
    registry = registries()["augmentations"]
    for name, module in MODULES.items():
        plugin = registry.get(name)  # imports and checks it against the family
        assert plugin.module is module and plugin.description
        assert 0.0 <= module.Params().p <= 1.0


def test_importing_the_plugins_does_not_import_tensorflow() -> None:
    code = ("import sys\n" + "".join(f"import gaitrun.plugins.augmentations.{n}\n" for n in NAMES)
            + "assert 'tensorflow' not in sys.modules, 'tensorflow imported'\n")
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize("name, layout, channels", CASES)
def test_keeps_shape_and_dtype_and_p0_is_identity(name: str, layout: str, channels: int) -> None:
    (x,) = random_samples(name, layout, channels)
    out = run(name, x, layout=layout, p=1.0, **STRONG.get(name, {}))
    assert out.shape == x.shape and out.dtype == np.float32 and not np.array_equal(out, x)
    np.testing.assert_array_equal(run(name, x, layout=layout, p=0.0), x)


@pytest.mark.parametrize("name", NAMES)
def test_runs_in_tf_data_and_is_deterministic_per_seed(name: str) -> None:
    order = ("stack2d", "clip3d", "frame_set", "sequence", "image", "inertial")  # clips first
    layout, channels = min((order.index(c[1]), c[1], c[2]) for c in CASES if c[0] == name)[1:]
    samples = random_samples(name, layout, channels, count=8)
    params = {"p": 0.5} if name == "flip" else {}
    first, again, other = map_dataset(name, samples, layout=layout, seeds=(7, 7, 8), **params)
    assert first.shape == samples.shape and first.dtype == np.float32
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)


def test_flip_on_silhouettes_mirrors() -> None:
    x = np.random.default_rng(1).random((T, H, W, 1), dtype=np.float32)
    np.testing.assert_array_equal(run("flip", x, layout="frame_set", p=1.0), x[:, :, ::-1])


def test_flip_on_flow_negates_x_keeps_y_and_mirrors() -> None:
    clip = np.random.default_rng(2).normal(size=(T, H, W, 2)).astype(np.float32)
    out = run("flip", clip, layout="clip3d", p=1.0)
    np.testing.assert_array_equal(out[..., 0], -clip[:, :, ::-1, 0])
    np.testing.assert_array_equal(out[..., 1], clip[:, :, ::-1, 1])
    stack = clip.transpose(1, 2, 0, 3).reshape(H, W, 2 * T)  # x0, y0, x1, y1, ...
    out = run("flip", stack, layout="stack2d", p=1.0)
    np.testing.assert_array_equal(out[..., 0::2], -stack[:, ::-1, 0::2])
    np.testing.assert_array_equal(out[..., 1::2], stack[:, ::-1, 1::2])


def dot_positions(frames: np.ndarray) -> np.ndarray:
    """(row, col) of the brightest pixel of every frame (N, H, W)."""
    return np.array([np.unravel_index(np.argmax(f), f.shape) for f in frames])


@pytest.mark.parametrize("layout", ["clip3d", "stack2d"])
def test_shift_moves_every_frame_by_the_same_offset(layout: str) -> None:
    clip = np.zeros((T, 20, 20, 2), np.float32)
    for t in range(T):
        clip[t, 6 + t, 5 + 2 * t, :] = 1.0  # one dot per frame, at different places
    x = clip if layout == "clip3d" else clip.transpose(1, 2, 0, 3).reshape(20, 20, 2 * T)
    offsets = set()
    for seed in range(6):
        out = run("shift", x, layout=layout, seed=(seed, 0), max_px=3)
        frames = out if layout == "clip3d" else out.reshape(20, 20, T, 2).transpose(2, 0, 1, 3)
        np.testing.assert_allclose(frames[..., 1], frames[..., 0])  # a shift leaves vectors as they are
        moved = dot_positions(frames[..., 1]) - dot_positions(clip[..., 1])
        assert (moved == moved[0]).all() and np.abs(moved).max() <= 3
        np.testing.assert_allclose(frames[..., 1].sum(axis=(1, 2)), 1.0, atol=1e-6)  # whole pixels
        offsets.add(tuple(moved[0]))
    assert len(offsets) > 1


def test_zoom_scales_flow_vectors() -> None:
    field = np.broadcast_to(np.array([1.0, -2.0], np.float32), (T, 21, 21, 2))
    out = run("zoom", field, layout="clip3d", max=0.2)
    centre = out[:, 10, 10]
    scale = centre[0, 0]
    assert scale != 1.0 and 0.8 <= scale <= 1.2
    np.testing.assert_allclose(centre, np.tile([scale, -2.0 * scale], (T, 1)), rtol=1e-5)


def principal_angle(image: np.ndarray) -> float:
    """Direction (radians, modulo pi) of the bright pixels' main axis, x right and y down."""
    rows, cols = np.nonzero(image > 0.5)
    points = np.stack([cols - cols.mean(), rows - rows.mean()])
    eigenvalues, vectors = np.linalg.eigh(points @ points.T)
    main = vectors[:, np.argmax(eigenvalues)]
    return math.atan2(main[1], main[0]) % math.pi


def test_rotate_turns_flow_vectors_with_the_image() -> None:
    bar = np.zeros((1, 41, 41, 1), np.float32)
    bar[0, 19:22, 5:36] = 1.0  # horizontal bar through the centre
    field = np.broadcast_to(np.array([1.0, 0.0], np.float32), (1, 41, 41, 2))
    turned = run("rotate", bar, layout="sequence", seed=(3, 4), max_deg=40.0)[0, ..., 0]
    vector = run("rotate", field, layout="sequence", seed=(3, 4), max_deg=40.0)[0, 20, 20]
    assert np.linalg.norm(vector) == pytest.approx(1.0, abs=1e-5)
    angle = math.atan2(vector[1], vector[0])
    assert 0.05 < abs(angle) <= math.radians(40.0)
    difference = (principal_angle(turned) - angle) % math.pi
    assert min(difference, math.pi - difference) < math.radians(3.0)


def test_shear_keeps_the_centre_row() -> None:
    image = np.random.default_rng(4).random((21, 21, 1), dtype=np.float32)
    out = run("shear", image, layout="image", max=0.3)
    np.testing.assert_allclose(out[10], image[10], atol=1e-5)
    assert not np.allclose(out, image)


def test_flow_threshold_zeroes_exactly_the_vectors_outside_the_range() -> None:
    vectors = np.array([[0.2, 0.1], [3.0, 4.0], [20.0, 15.0], [0.0, 1.0], [-0.3, 0.3]], np.float32)
    field = np.broadcast_to(vectors[None, :, None, :], (T, 5, 3, 2)).copy()
    out = run("flow_threshold", field, layout="clip3d", p=1.0, low=0.5, high=23.0)
    expected = vectors * np.array([[0], [1], [0], [1], [0]], np.float32)  # |v| = .22, 5, 25, 1, .42
    np.testing.assert_array_equal(out, np.broadcast_to(expected[None, :, None, :], field.shape))
    out = run("flow_threshold", field, layout="clip3d", p=1.0, low=0.5, high=23.0, norm="component")
    expected = vectors * (np.abs(vectors) >= 0.5) * (np.abs(vectors) <= 23.0)
    np.testing.assert_array_equal(out[0, :, 0], expected)


def test_flow_threshold_refuses_non_flow_frames() -> None:
    with pytest.raises(PluginError, match="optical flow"):
        run("flow_threshold", np.zeros((T, H, W, 3)), layout="clip3d", p=1.0)


def test_temporal_crop_is_a_resampled_window() -> None:
    clip = np.broadcast_to(np.arange(10, dtype=np.float32)[:, None, None, None], (10, 4, 4, 1))
    spans = set()
    for seed in range(8):
        order = run("temporal_crop", clip, layout="frame_set", seed=(seed, 1), min_fraction=0.5)[:, 0, 0, 0]
        steps = np.diff(order)
        assert ((steps == 0) | (steps == 1)).all()  # consecutive source frames, some repeated
        spans.add(order[-1] - order[0] + 1)
        assert order[-1] - order[0] + 1 >= 5
    assert len(spans) > 1


@pytest.mark.parametrize("fill", ["repeat", "zero"])
def test_frame_dropout(fill: str) -> None:
    clip = np.broadcast_to(np.arange(1, 9, dtype=np.float32)[:, None, None, None], (8, 3, 3, 1))
    out = run("frame_dropout", clip, layout="frame_set", seed=(5, 5), rate=0.6, fill=fill)[:, 0, 0, 0]
    kept = out == np.arange(1, 9)
    assert kept.any() and not kept.all()
    if fill == "zero":
        assert (out[~kept] == 0).all()
    else:
        assert set(out[~kept]) <= set(out[kept])  # dropped frames are copies of kept ones


def test_cutout_erases_one_rectangle_in_every_frame() -> None:
    clip = np.ones((T, 20, 20, 1), np.float32)
    out = run("cutout", clip, layout="clip3d", p=1.0, size=0.3)
    erased = out[..., 0] == 0
    assert (erased == erased[0]).all()  # the same place in every frame
    rows, cols = np.nonzero(erased[0])
    assert erased[0].sum() == (np.ptp(rows) + 1) * (np.ptp(cols) + 1) <= 36  # a rectangle, at most 6 x 6


def test_brightness_and_contrast_stay_in_range() -> None:
    x = np.random.default_rng(6).random((T, H, W, 3), dtype=np.float32)
    for name, params in (("brightness", {"max_delta": 0.5}), ("contrast", {"lower": 2.0, "upper": 3.0})):
        out = run(name, x, layout="sequence", **params)
        assert 0.0 <= out.min() and out.max() <= 1.0 and not np.allclose(out, x)


def test_scaling_gains_are_per_channel() -> None:
    x = np.ones((32, 6), np.float32)
    out = run("scaling", x, layout="inertial", sigma=0.2)
    assert (out == out[0]).all() and len(set(out[0])) == 6


def test_bad_params_and_layouts_are_refused() -> None:
    with pytest.raises(ValidationError):
        MODULES["contrast"].Params(lower=1.5, upper=1.0)
    with pytest.raises(ValidationError):
        MODULES["flip"].Params(p=1.5)
    with pytest.raises(ValidationError):
        MODULES["shift"].Params(max_pixels=3)
    with pytest.raises(PluginError, match="'inertial' layout"):
        run("flip", np.zeros((8, 3)), layout="inertial")
    with pytest.raises(PluginError, match="'image' layout"):
        run("temporal_crop", np.zeros((H, W, 1)), layout="image")
