"""What every dataset adapter shares: the plugin contract, cheap imports, the _common helpers."""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from gaitrun.errors import DataError
from gaitrun.plugins.datasets import _common
from gaitrun.registry import Registry

ADAPTERS = ["casia_b", "opengait_pkl", "tum_gaid_h5", "image_folder", "video_folder", "uci_har", "digits"]
HEAVY = ("cv2", "h5py", "sklearn", "tensorflow")


@pytest.mark.parametrize("name", ADAPTERS)
def test_adapter_fits_the_datasets_family(name: str) -> None:
    module = importlib.import_module(f"gaitrun.plugins.datasets.{name}")
    plugin = Registry("datasets").add(name, module)
    assert plugin.description and plugin.params.model_config["frozen"] is True
    with pytest.raises(ValidationError, match="no_such_key"):
        plugin.params(no_such_key=1)


def test_importing_the_adapters_imports_no_heavy_library() -> None:
    code = ("import sys\n"
            + "".join(f"import gaitrun.plugins.datasets.{n}\n" for n in ADAPTERS)
            + f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_id_key_and_condition_of() -> None:
    assert _common.id_key("001") == _common.id_key(1) == _common.id_key(" 1") == "1"
    assert _common.id_key("nm") == "nm"
    assert _common.condition_of("nm-01") == "nm" and _common.condition_of("00") == "00"


def test_class_folders_without_and_with_splits(tmp_path: Path) -> None:
    for folder in ("b", "a", ".git"):
        (tmp_path / "flat" / folder).mkdir(parents=True)
    assert [(s, p.name) for s, p in _common.class_folders(tmp_path / "flat")] == [(None, "a"), (None, "b")]
    for folder in ("TRAIN/x", "Val/x", "Testing/y"):
        (tmp_path / "split" / folder).mkdir(parents=True)
    assert [(s, p.name) for s, p in _common.class_folders(tmp_path / "split")] == [
        ("train", "x"), ("test", "y"), ("validation", "x")]


def test_existing_root_expands_user(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / "data").mkdir()
    assert _common.existing_root("~/data", "x") == tmp_path.resolve() / "data"
    with pytest.raises(DataError, match="x folder does not exist; check data.params.root"):
        _common.existing_root("~/missing", "x")
