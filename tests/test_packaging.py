"""Packaging: every sub-package is listed in pyproject.toml (a regular install needs it) and
no generic top-level name (runner, plugins) is claimed in site-packages."""

from __future__ import annotations

from pathlib import Path

import tomllib

REPO = Path(__file__).resolve().parents[1]


def test_every_package_is_listed():
    config = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(config["packages"])
    found = set()
    for root, prefix in (("runner", "gaitrun"), ("plugins", "gaitrun.plugins")):
        for init in (REPO / root).rglob("__init__.py"):
            rel = init.parent.relative_to(REPO / root)
            found.add(".".join([prefix, *rel.parts]) if rel.parts else prefix)
    assert found <= listed, f"add to pyproject.toml packages: {sorted(found - listed)}"
    assert config["package-dir"] == {"gaitrun": "runner", "gaitrun.plugins": "plugins"}
    assert all(name.startswith("gaitrun") for name in listed)


def test_installed_under_gaitrun_only():
    import gaitrun
    import gaitrun.plugins

    assert Path(gaitrun.__file__).parent.name in ("runner", "gaitrun")
    assert gaitrun.plugins.PLUGINS_DOC if hasattr(gaitrun.plugins, "PLUGINS_DOC") else True
    import importlib.util

    for generic in ("runner", "plugins"):
        spec = importlib.util.find_spec(generic)
        assert spec is None or "site-packages" not in str(spec.origin), generic
