"""digits adapter: scikit-learn's bundled handwritten digits as (8, 8, 3) uint8 images."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import model_inputs
from pydantic import ValidationError
from sklearn.datasets import load_digits

from gaitrun.plugins.datasets import digits


def scan(**params) -> list:
    return digits.scan(digits.Params(**params), cache_dir=Path("x"), seed=0)


def test_scan_lists_every_image_with_its_digit() -> None:
    samples = scan()
    reference = load_digits()
    assert len(samples) == len(reference.target) == 1797
    assert [s.label for s in samples] == [str(d) for d in reference.target]
    assert [s.index for s in samples] == list(range(1797))
    assert {s.path for s in samples} == {"sklearn:digits"} and {s.subject for s in samples} == {None}


def test_n_class_keeps_the_first_digits_and_full_dataset_rows() -> None:
    samples = scan(n_class=3)
    assert {s.label for s in samples} == {"0", "1", "2"}
    target = load_digits().target
    assert all(str(target[s.index]) == s.label for s in samples)


def test_load_scales_to_uint8_rgb() -> None:
    sample = scan()[5]
    image = digits.load(sample, digits.Params())
    assert image.shape == (8, 8, 3) and image.dtype == np.uint8
    expected = np.rint(load_digits().images[5] * 255 / 16)
    for channel in range(3):
        np.testing.assert_array_equal(image[..., channel], expected)
    (model_input,) = model_inputs(image, modality="rgb", kind="image", frames=1, size=(8, 8))
    np.testing.assert_allclose(model_input[..., 0], expected / 255, atol=1e-3)  # float16 store
    image[0, 0] = 1  # the caller owns the array: the cached dataset is untouched
    np.testing.assert_array_equal(digits.load(sample, digits.Params())[..., 0], expected)


@pytest.mark.parametrize("n_class", [1, 11])
def test_n_class_bounds(n_class: int) -> None:
    with pytest.raises(ValidationError):
        digits.Params(n_class=n_class)
