"""image_folder adapter on tiny <class>/ and <split>/<class>/ image trees."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import model_inputs

from gaitrun.errors import DataError
from gaitrun.plugins.datasets import image_folder

RED_RGB = np.zeros((5, 7, 3), np.uint8)
RED_RGB[..., 0] = 250


def write_image(path: Path, rgb: np.ndarray = RED_RGB) -> None:
    """Write an RGB image (OpenCV wants BGR on the way out)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    ok, encoded = cv2.imencode(path.suffix.lower(), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    assert ok
    path.write_bytes(encoded.tobytes())


def scan(root: Path, **params) -> list:
    return image_folder.scan(image_folder.Params(root=str(root), **params), cache_dir=Path("x"), seed=0)


def test_class_layout_with_mixed_extensions(tmp_path: Path) -> None:
    for name in ("boots/a.png", "boots/b.JPG", "sandals/c.jpeg", "sandals/d.BMP"):
        write_image(tmp_path / name)
    (tmp_path / "sandals" / "notes.txt").write_text("not an image")
    (tmp_path / "sandals" / ".hidden.png").write_bytes(b"")
    samples = scan(tmp_path)
    assert [(Path(s.path).name, s.label, s.split) for s in samples] == [
        ("a.png", "boots", None), ("b.JPG", "boots", None),
        ("c.jpeg", "sandals", None), ("d.BMP", "sandals", None)]
    assert scan(tmp_path) == samples


def test_split_layout_any_case(tmp_path: Path) -> None:
    for split in ("Train", "VAL", "test"):
        for cls in ("boots", "heels"):
            write_image(tmp_path / split / cls / f"{split}-{cls}.png")
    samples = scan(tmp_path)
    assert len(samples) == 6
    assert {(s.split, s.label) for s in samples} == {
        (split, cls) for split in ("train", "validation", "test") for cls in ("boots", "heels")}


def test_split_names_valid_and_validation(tmp_path: Path) -> None:
    write_image(tmp_path / "Training" / "a" / "1.png")
    write_image(tmp_path / "Valid" / "a" / "2.png")
    write_image(tmp_path / "Validation" / "b" / "3.png")
    assert [s.split for s in scan(tmp_path)] == ["train", "validation", "validation"]


def test_mixed_split_and_class_folders_are_refused(tmp_path: Path) -> None:
    write_image(tmp_path / "Train" / "boots" / "a.png")
    write_image(tmp_path / "heels" / "b.png")
    with pytest.raises(DataError, match="mixes split folders") as err:
        scan(tmp_path)
    assert err.value.path == str(tmp_path)


def test_load_returns_rgb_or_grey(tmp_path: Path) -> None:
    write_image(tmp_path / "boots" / "a.png")
    (sample,) = scan(tmp_path)
    rgb = image_folder.load(sample, image_folder.Params(root=str(tmp_path)))
    assert rgb.shape == (5, 7, 3) and rgb.dtype == np.uint8
    assert rgb[0, 0].tolist() == [250, 0, 0]  # red stays in channel 0
    grey = image_folder.load(sample, image_folder.Params(root=str(tmp_path), grayscale=True))
    assert grey.shape == (5, 7, 3) and grey.dtype == np.uint8
    assert grey[0, 0].tolist() == [grey[0, 0, 0]] * 3 and 0 < grey[0, 0, 0] < 250
    for raw in (rgb, grey):
        (image,) = model_inputs(raw, modality="rgb", kind="image", frames=1, size=(4, 4))
        assert image.shape == (4, 4, 3)


def test_truncated_image_names_the_file(tmp_path: Path) -> None:
    png = tmp_path / "boots" / "a.png"
    write_image(png)
    png.write_bytes(png.read_bytes()[:25])
    (sample,) = scan(tmp_path)
    with pytest.raises(DataError) as err:
        image_folder.load(sample, image_folder.Params(root=str(tmp_path)))
    assert err.value.path == str(png)


def test_missing_or_empty_root(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="does not exist") as err:
        scan(tmp_path / "nope")
    assert err.value.path == str(tmp_path / "nope")
    (tmp_path / "boots").mkdir()
    (tmp_path / "boots" / "readme.txt").write_text("no images here")
    with pytest.raises(DataError, match="holds no images") as err:
        scan(tmp_path)
    assert err.value.path == str(tmp_path)
