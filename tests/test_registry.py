"""Plugin registries: built-ins, entry points, refusal of misfits, unknown names."""

from __future__ import annotations

import types

import pytest
from pydantic import BaseModel, ConfigDict

from gaitrun.errors import PluginError
from gaitrun.registry import FAMILIES, Registries, Registry, registries


def _module(name: str = "fake", doc: str = "A fake plugin.", **attrs) -> types.ModuleType:
    module = types.ModuleType(name, doc)
    for key, value in attrs.items():
        setattr(module, key, value)
    return module


class GoodParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    size: int = 3


class LaxParams(BaseModel):
    size: int = 3


def _build(*, input_shape, num_classes, params):
    return None


def test_every_family_has_builtins_and_they_fit():
    regs = registries()
    for family in FAMILIES:
        assert regs[family].names(), family
    assert "cnn3d" in regs["architectures"]
    assert regs["architectures"].get("cnn3d").declared("INPUT_KIND") == "clip3d"


def test_builtins_import_no_tensorflow():
    import subprocess
    import sys

    code = ("import sys; from gaitrun.registry import registries; registries(); "
            "heavy = [m for m in ('tensorflow', 'keras', 'ray', 'onnxruntime', 'tensorrt', 'cv2', 'h5py') "
            "if m in sys.modules]; print(heavy); sys.exit(1 if heavy else 0)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_good_plugin_registers():
    reg = Registry("architectures")
    plugin = reg.add("tiny", _module(Params=GoodParams, build=_build, INPUT_KIND="image", EMBEDDING=False))
    assert plugin.description == "A fake plugin."
    assert reg.get("tiny") is plugin


@pytest.mark.parametrize(("attrs", "missing"), [
    ({"build": _build, "INPUT_KIND": "image", "EMBEDDING": False}, "'Params' (a pydantic BaseModel subclass)"),
    ({"Params": LaxParams, "build": _build, "INPUT_KIND": "image", "EMBEDDING": False}, "extra='forbid'"),
    ({"Params": GoodParams, "INPUT_KIND": "image", "EMBEDDING": False}, "a function 'build'"),
    ({"Params": GoodParams, "build": _build, "EMBEDDING": False}, "the declaration 'INPUT_KIND'"),
    ({"Params": GoodParams, "build": _build, "INPUT_KIND": "hologram", "EMBEDDING": False}, "INPUT_KIND must be one of"),
    ({"Params": GoodParams, "build": _build, "INPUT_KIND": "image", "EMBEDDING": "yes"}, "EMBEDDING must be True or False"),
])
def test_misfit_plugin_refused_with_what_is_missing(attrs, missing):
    with pytest.raises(PluginError) as info:
        Registry("architectures").add("bad", _module(**attrs))
    assert "architectures plugin 'bad' (built-in) does not fit the family" in str(info.value)
    assert missing in str(info.value)
    assert info.value.plugin == "bad" and info.value.family == "architectures"


def test_missing_docstring_and_bad_name_refused():
    with pytest.raises(PluginError, match="docstring"):
        Registry("cv").add("nodoc", _module(doc=None, Params=GoodParams, split=lambda *a, **k: []))
    with pytest.raises(PluginError, match="lower-case identifier"):
        Registry("cv").add("Bad-Name", _module(Params=GoodParams, split=lambda *a, **k: []))


def test_unknown_name_lists_known_and_closest():
    with pytest.raises(PluginError) as info:
        registries()["architectures"].get("cnn3")
    assert "did you mean 'cnn3d'?" in str(info.value)
    assert "gaitset" in str(info.value)


def test_example_plugin_discovered_through_entry_point():
    """tests/example_plugin is installed into the test environment (see the README)."""
    regs = Registries()
    regs.load_entry_points()
    plugin = regs["architectures"].get("tiny_mlp")
    assert plugin.origin.startswith("entry point 'architectures.tiny_mlp' of gaitrun-example-plugin")
    assert plugin.module.__name__ == "gaitrun_example_plugin.tiny_mlp"
    assert "invert" in regs["augmentations"]


def test_entry_point_scan_is_cached_and_invalidated(tmp_path, monkeypatch):
    import sys

    from gaitrun.registry import installed_entry_points

    monkeypatch.setenv("GAITRUN_CACHE", str(tmp_path / "cache"))
    first = installed_entry_points()
    assert ("architectures.tiny_mlp", "gaitrun_example_plugin.tiny_mlp", "gaitrun-example-plugin") in first
    assert installed_entry_points() == first
    assert len(list((tmp_path / "cache" / "entry-points").iterdir())) == 1
    extra = tmp_path / "new-site"
    extra.mkdir()
    monkeypatch.setattr(sys, "path", [*sys.path, str(extra)])  # a new install location: scan again
    assert installed_entry_points() == first
    assert len(list((tmp_path / "cache" / "entry-points").iterdir())) == 2
