"""Serving's NumPy windows of a raw upload equal the tf.data windows training evaluates on."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import model_inputs as tf_windows

from gaitrun.data.raw_inputs import model_inputs

RNG = np.random.default_rng(0)
SILHOUETTES = (RNG.random((9, 20, 16)) > 0.5).astype(np.uint8) * 255
VIDEO = RNG.integers(0, 255, size=(9, 20, 16, 3), dtype=np.uint8)


@pytest.mark.parametrize(("raw", "modality", "kind", "frames", "size"), [
    (SILHOUETTES, "silhouette", "frame_set", 4, (16, 12)),
    (SILHOUETTES, "silhouette", "clip3d", 3, (16, 12)),
    (VIDEO, "rgb", "image", 1, (12, 10)),
    (VIDEO, "optical_flow", "stack2d", 4, (12, 10)),
    (VIDEO, "optical_flow", "clip3d", 4, (12, 10)),
    (RNG.normal(size=(50, 6)).astype(np.float32), "inertial", "inertial", 16, (1, 6)),
])
@pytest.mark.parametrize("stride", [None, 2])
def test_numpy_windows_equal_the_training_windows(raw, modality, kind, frames, size, stride):
    ours = model_inputs(raw, modality=modality, kind=kind, frames=frames, size=size, stride=stride)
    theirs = np.stack(tf_windows(raw, modality=modality, kind=kind, frames=frames, size=size, stride=stride))
    assert ours.dtype == np.float32 and ours.shape == theirs.shape
    np.testing.assert_allclose(ours, theirs, rtol=1e-6, atol=1e-6)


def test_an_upload_shorter_than_a_window_is_refused():
    with pytest.raises(ValueError, match="gives 9 time steps, the model takes windows of 12"):
        model_inputs(SILHOUETTES, modality="silhouette", kind="clip3d", frames=12, size=(16, 12), source="upload")
