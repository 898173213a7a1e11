"""Tests for gaitrun.data.preprocess: silhouette crops, optical flow, windows and layouts."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import model_inputs

from gaitrun.data import preprocess as pp
from gaitrun.errors import DataError

SIZE = (64, 44)


def moving_square(steps: int, dx: int, dy: int, size: int = 60, side: int = 16) -> np.ndarray:
    """uint8 frames (T, size, size) of a white square moving by (dx, dy) pixels per frame."""
    frames = np.zeros((steps, size, size), np.uint8)
    for t in range(steps):
        top, left = 20 + dy * t, 20 + dx * t
        frames[t, top:top + side, left:left + side] = 255
    return frames


def column_centre(image: np.ndarray) -> float:
    mass = image.sum(axis=0)
    return float(np.average(np.arange(image.shape[1]), weights=mass))


# --- crop_silhouette -------------------------------------------------------------------------

def test_crop_silhouette_scales_height_keeps_aspect_and_centres() -> None:
    frame = np.zeros((120, 100), np.uint8)
    frame[30:70, 70:80] = 255  # a 40 x 10 body far right of the frame's centre
    image, found = pp.crop_silhouette(frame, SIZE)
    assert found and image.shape == SIZE and image.dtype == np.float32
    assert 0.0 <= image.min() and image.max() <= 1.0
    rows = np.flatnonzero(image.max(axis=1) > 0.5)
    cols = np.flatnonzero(image.max(axis=0) > 0.5)
    assert rows[0] == 0 and rows[-1] == SIZE[0] - 1  # the body fills the height
    assert len(cols) == pytest.approx(10 * 64 / 40, abs=1)  # 40 x 10 -> 64 x 16: aspect kept
    assert column_centre(image) == pytest.approx(SIZE[1] / 2, abs=1.0)


def test_crop_silhouette_centres_on_the_mass_not_the_box() -> None:
    frame = np.zeros((100, 100), np.uint8)
    frame[10:90, 40:60] = 255  # torso
    frame[40:42, 60:95] = 255  # a thin arm widens the box to the right
    image, _ = pp.crop_silhouette(frame, SIZE)
    assert column_centre(image) == pytest.approx(SIZE[1] / 2, abs=1.5)
    torso = np.flatnonzero(image[55] > 0.5)  # a row below the arm: torso only, symmetric about W/2
    assert (torso[0] + torso[-1]) / 2 == pytest.approx(SIZE[1] / 2, abs=2.0)


def test_crop_silhouette_empty_frame_gives_zeros_and_flag() -> None:
    image, found = pp.crop_silhouette(np.zeros((50, 40), np.uint8), SIZE)
    assert not found and image.shape == SIZE and not image.any()


# --- optical flow --------------------------------------------------------------------------

@pytest.mark.parametrize("dx, dy", [(2, 0), (0, 3), (-2, 1)])
def test_optical_flow_of_a_moving_square(dx: int, dy: int) -> None:
    frames = moving_square(4, dx, dy)
    flow = pp.optical_flow(frames)
    assert flow.shape == (3, 60, 60, 2) and flow.dtype == np.float32
    inside = frames[0] > 0
    mean = flow[0][inside].mean(axis=0)  # x then y
    assert mean == pytest.approx([dx, dy], abs=0.3)


def test_resize_flow_rescales_vectors() -> None:
    flow = np.broadcast_to(np.array([1.0, 2.0], np.float32), (2, 30, 20, 2))
    resized = pp.resize_flow(flow, (60, 60))
    assert resized.shape == (2, 60, 60, 2)
    np.testing.assert_allclose(resized[0, 30, 30], [3.0, 4.0], rtol=1e-5)  # x * 60/20, y * 60/30


# --- windows and layouts ---------------------------------------------------------------------

def test_clip_windows() -> None:
    assert pp.clip_windows(10, 4, 3) == [0, 3, 6]
    assert pp.clip_windows(8, 4, 4) == [0, 4]
    assert pp.clip_windows(3, 5, 5) == [0]
    with pytest.raises(ValueError):
        pp.clip_windows(10, 0, 1)


def test_short_clips_loop_in_the_pipeline_with_pad_loop() -> None:
    window = np.arange(6, dtype=np.float32).reshape(3, 2)
    (out,) = model_inputs(window, modality="inertial", kind="inertial", frames=5, size=(0, 0), pad="loop")
    assert out[:, 0].tolist() == [0, 2, 4, 0, 2]


def test_stack2d_interleaves_x_and_y_per_frame() -> None:
    frames = 3
    flow = np.zeros((frames, 4, 5, 2), np.float32)
    for t in range(frames):
        flow[t, ..., 0], flow[t, ..., 1] = 10 * t, 10 * t + 1
    (stack,) = model_inputs(flow, modality="optical_flow", kind="stack2d", frames=frames, size=(4, 5))
    assert stack.shape == (4, 5, 6)
    assert stack[2, 3].tolist() == [0, 1, 10, 11, 20, 21]  # x0, y0, x1, y1, x2, y2


def test_stack2d_needs_flow() -> None:
    with pytest.raises(ValueError, match="optical flow"):
        pp.layout_shape("stack2d", 3, (4, 5), 3)


@pytest.mark.parametrize("kind", ["image", "stack2d", "clip3d", "frame_set", "sequence"])
def test_layout_shape_matches_the_pipeline(kind: str) -> None:
    flow = np.random.default_rng(0).random((5, 8, 6, 2), dtype=np.float32)
    (out,) = model_inputs(flow, modality="optical_flow", kind=kind, frames=5, size=(8, 6))
    assert out.shape == pp.layout_shape(kind, 5, (8, 6), 2)


def test_image_layout_is_the_temporal_mean() -> None:
    masks = np.zeros((2, 40, 30), np.uint8)
    masks[:, 5:35, 10:20] = 255
    masks[1, 5:35, 10:20] = 0  # the second frame has no body: dropped, so the mean is the first
    masks[1, 5:35, 12:22] = 255
    (gei,) = model_inputs(masks, modality="silhouette", kind="image", frames=2, size=(16, 12))
    (first,) = model_inputs(masks[:1], modality="silhouette", kind="image", frames=1, size=(16, 12))
    assert gei.shape == (16, 12, 1) and 0 < gei.max() <= 1
    np.testing.assert_allclose(gei, first, atol=1e-3)  # both frames crop to the same centred body


def test_inertial_layout_shape() -> None:
    assert pp.layout_shape("inertial", 128, (0, 0), 9) == (128, 9)
    with pytest.raises(ValueError, match="unknown layout"):
        pp.layout_shape("volume", 1, (4, 4), 1)


# --- raw sample -> model inputs (to_clip, the store, the tf.data windows) -------------------------------------------------------------------------------

def test_prepare_silhouettes_drops_empty_frames_and_windows() -> None:
    frames = np.zeros((10, 80, 60), np.uint8)
    for t in range(10):
        frames[t, 10:70, 20 + t:35 + t] = 255
    frames[4] = 0  # one frame without a body
    windows = model_inputs(frames, modality="silhouette", kind="frame_set", frames=4, size=SIZE, source="seq")
    assert len(windows) == 3  # 9 kept frames -> windows at 0 and 4, and 5-8 to reach the last frame
    for window in windows:
        assert window.shape == (4, 64, 44, 1) and window.dtype == np.float32
        assert 0.0 <= window.min() and window.max() == pytest.approx(1.0)


def test_prepare_silhouettes_without_any_body_is_a_data_error() -> None:
    with pytest.raises(DataError) as info:
        model_inputs(np.zeros((3, 20, 20), np.uint8), modality="silhouette", kind="clip3d", frames=2,
                   size=SIZE, source="/data/001/nm-01/090")
    assert info.value.path == "/data/001/nm-01/090"


def test_prepare_rgb_image() -> None:
    image = np.full((30, 40, 3), 255, np.uint8)
    (out,) = model_inputs(image, modality="rgb", kind="image", frames=8, size=(16, 16))
    assert out.shape == (16, 16, 3) and out.dtype == np.float32
    np.testing.assert_allclose(out, 1.0)


def test_prepare_optical_flow_from_frames() -> None:
    frames = moving_square(5, 2, 0)  # 5 frames -> 4 flow fields -> windows of 3 at 0 and 1 (covering)
    windows = model_inputs(frames, modality="optical_flow", kind="stack2d", frames=3, size=(60, 60))
    assert len(windows) == 2 and windows[0].shape == (60, 60, 6)
    inside = frames[0] > 0
    assert windows[0][..., 0][inside].mean() == pytest.approx(2.0, abs=0.3)  # x-flow of frame 0
    assert abs(windows[0][..., 1][inside].mean()) < 0.3


def test_prepare_precomputed_flow_is_resized_in_pixels() -> None:
    flow = np.ones((6, 30, 30, 2), np.float32)
    windows = model_inputs(flow, modality="optical_flow", kind="clip3d", frames=3, size=(60, 60), stride=1)
    assert len(windows) == 4 and windows[0].shape == (3, 60, 60, 2)
    np.testing.assert_allclose(windows[0], 2.0, rtol=1e-5)


def test_inertial_windows_and_short_sequences_loop_with_pad_loop() -> None:
    window = np.arange(20, dtype=np.float64).reshape(10, 2)
    (out,) = model_inputs(window, modality="inertial", kind="inertial", frames=12, size=(0, 0), pad="loop")
    assert out.shape == (12, 2) and out.dtype == np.float32
    assert out[10].tolist() == [0.0, 1.0]  # frame 10 loops back to frame 0


def test_prepare_rejects_wrong_arrays_naming_the_sample() -> None:
    with pytest.raises(DataError, match="video.mp4"):
        model_inputs(np.zeros((4, 8, 8), np.float32), modality="rgb", kind="clip3d", frames=2,
                   size=(8, 8), source="video.mp4")
    with pytest.raises(DataError, match="at least 2"):
        model_inputs(np.zeros((1, 8, 8), np.uint8), modality="optical_flow", kind="clip3d", frames=2,
                   size=(8, 8))
    with pytest.raises(ValueError, match="unknown modality"):
        model_inputs(np.zeros((2, 8, 8), np.uint8), modality="depth", kind="clip3d", frames=2, size=(8, 8))
