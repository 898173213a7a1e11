"""Tiny trained classifiers on a learnable synthetic problem, shared by the export tests.

The problem: 4 classes, each lights up one quadrant of a noisy 16x16 input (2-D image with 3
channels, or a 4-frame clip with 2 flow channels for the 3-D model). A few epochs give a
confident classifier, so INT8 top-1 agreement with the float model is meaningful. The 3-D
model has no pooling (TFLite has no MaxPool3D kernel) and no strides (strided Conv3D
gradients are very slow on CPU).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from gaitrun.export import ExportContext

SHAPES = {"2d": (16, 16, 3), "3d": (4, 16, 16, 2)}
INPUT_NAMES = {"2d": "image", "3d": "clip"}
LABELS = ["q0", "q1", "q2", "q3"]


def make_problem(kind: str, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` samples and labels; class k adds +1 to quadrant k of every frame and channel."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 4, n)
    x = rng.normal(0.0, 0.3, (n, *SHAPES[kind])).astype("float32")
    for i, k in enumerate(y):
        r, c = divmod(int(k), 2)
        x[i, ..., r * 8:(r + 1) * 8, c * 8:(c + 1) * 8, :] += 1.0
    return x, y


def build_model(kind: str):
    """A tiny Conv2D or Conv3D classifier with a named input."""
    import keras

    keras.utils.set_random_seed(0)
    inp = keras.Input(SHAPES[kind], name=INPUT_NAMES[kind])
    if kind == "2d":
        h = keras.layers.Conv2D(8, 3, activation="relu")(inp)
        h = keras.layers.MaxPooling2D()(h)
        h = keras.layers.Conv2D(16, 3, activation="relu")(h)
    else:
        h = keras.layers.Conv3D(8, 3, activation="relu")(inp)
        h = keras.layers.Conv3D(8, (2, 3, 3), activation="relu")(h)
    h = keras.layers.Flatten()(h)
    out = keras.layers.Dense(4, activation="softmax")(h)
    model = keras.Model(inp, out)
    model.compile("adam", "sparse_categorical_crossentropy", jit_compile=False)  # XLA costs more than it saves
    return model


def trained(kind: str) -> dict:
    """A trained model with its train (calibration source) and held-out test arrays."""
    x, y = make_problem(kind, 256, seed=0)
    x_test, y_test = make_problem(kind, 256, seed=1)
    model = build_model(kind)
    model.fit(x, y, epochs=4, batch_size=32, verbose=0)
    return {"model": model, "x": x, "y": y, "x_test": x_test, "y_test": y_test, "kind": kind}


class TrainedModels(dict):
    """Trains each kind on first use and keeps it (use from a module-scoped fixture)."""

    def __missing__(self, kind: str) -> dict:
        self[kind] = trained(kind)
        return self[kind]


def make_ctx(out_dir: Path, kind: str, precision: str, calibration: np.ndarray | None = None,
             batch_sizes: tuple[int, ...] = (1, 4, 8), strict: bool = False) -> ExportContext:
    """An ExportContext like the run would pass (calibration from the training split)."""
    calib = np.zeros((0, *SHAPES[kind]), "float32") if calibration is None else calibration
    return ExportContext(out_dir=out_dir, precision=precision, batch_sizes=batch_sizes,
                         calibration=calib, input_name=INPUT_NAMES[kind], labels=LABELS,
                         normalisation={"mean": 0.0, "std": 1.0}, strict=strict)


def keras_outputs(data: dict, x: np.ndarray | None = None) -> np.ndarray:
    from gaitrun.export.parity import run_keras

    return run_keras(data["model"], data["x_test"] if x is None else x)


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["2d", "3d"])
def test_synthetic_problem_is_learnable(kind):
    data = trained(kind)
    accuracy = float(np.mean(keras_outputs(data).argmax(-1) == data["y_test"]))
    assert accuracy >= 0.95
