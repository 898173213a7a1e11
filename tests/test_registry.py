"""Plugin registries: built-ins, entry points, refusal of misfits, unknown names."""

from __future__ import annotations

import pytest
from conftest import plugin_module
from pydantic import BaseModel, ConfigDict

from gaitrun.errors import PluginError
from gaitrun.registry import FAMILIES, Registries, Registry, registries


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
    plugin = reg.add("tiny", plugin_module(Params=GoodParams, build=_build, **ARCH))
    assert plugin.description == "A fake plugin."
    assert reg.get("tiny") is plugin


ARCH = {"INPUT_KIND": "image", "LOGITS": "logits", "EMBEDDING": None}


@pytest.mark.parametrize(("attrs", "missing"), [
    ({"build": _build, **ARCH}, "'Params' (a pydantic BaseModel subclass)"),
    ({"Params": LaxParams, "build": _build, **ARCH}, "extra='forbid'"),
    ({"Params": GoodParams, **ARCH}, "a function 'build(*, input_shape: tuple[int, ...], num_classes: int, params: "),
    ({"Params": GoodParams, "build": _build, **{**ARCH, "INPUT_KIND": None}} | {"INPUT_KIND": "hologram"},
     "INPUT_KIND must be one of"),
    ({"Params": GoodParams, "build": _build, "LOGITS": "logits", "EMBEDDING": None}, "the declaration 'INPUT_KIND'"),
    ({"Params": GoodParams, "build": _build, **{**ARCH, "EMBEDDING": True}}, "EMBEDDING must be a layer name or None"),
])
def test_misfit_plugin_refused_with_what_is_missing(attrs, missing):
    with pytest.raises(PluginError) as info:
        Registry("architectures").add("bad", plugin_module(**attrs))
    assert "architectures plugin 'bad' (built-in) does not fit the family" in str(info.value)
    assert missing in str(info.value)
    assert info.value.plugin == "bad" and info.value.family == "architectures"


def test_missing_docstring_and_bad_name_refused():
    with pytest.raises(PluginError, match="docstring"):
        Registry("cv").add("nodoc", plugin_module(doc=None, Params=GoodParams, split=lambda *a, **k: []))
    with pytest.raises(PluginError, match="lower-case identifier"):
        Registry("cv").add("Bad-Name", plugin_module(Params=GoodParams, split=lambda *a, **k: []))


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


def test_a_broken_plugin_is_remembered_listed_and_hides_nothing():
    regs = Registries()
    regs.load_builtins()
    reg = regs["architectures"]
    reg.declare("acme_good", lambda: plugin_module(Params=GoodParams, build=_build, **ARCH), origin="acme")
    reg.declare("acme_bad", lambda: plugin_module(Params=GoodParams, **ARCH), origin="acme")
    reg.declare("acme_crash", lambda: 1 / 0, origin="acme")
    entries = {e.name: e for e in reg.entries()}
    assert "lacks a function 'build(" in entries["acme_bad"].reason
    assert "failed to import: ZeroDivisionError" in entries["acme_crash"].reason
    working = [p.name for p in reg]
    assert "acme_good" in working and "cnn3d" in working and "acme_bad" not in working
    assert not reg.usable("acme_bad") and reg.usable("acme_good")
    with pytest.raises(PluginError, match="lacks a function 'build"):
        reg.get("acme_bad")  # asked again: the same reason, not a retry


def test_a_malformed_entry_point_name_is_a_broken_row_not_a_crash(monkeypatch):
    import gaitrun.registry as registry

    monkeypatch.setattr(registry, "installed_entry_points",
                        lambda: [("architecture.acme", "acme.mod", "acme"), ("architectures.tiny_mlp",
                                 "gaitrun_example_plugin.tiny_mlp", "gaitrun-example-plugin")])
    regs = Registries()
    regs.load_entry_points()
    assert "tiny_mlp" in regs["architectures"]
    (bad,) = regs.broken_entry_points
    assert "did you mean 'architectures'?" in bad.reason and bad.name == "acme"
