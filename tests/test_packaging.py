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


def test_scikit_learn_lower_bound_has_groupkfold_shuffle():
    """GroupKFold(shuffle=...) (group_kfold) arrived in scikit-learn 1.6: the bound must say so."""
    from packaging.requirements import Requirement
    from sklearn.model_selection import GroupKFold

    deps = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    (sklearn,) = [Requirement(d) for d in deps if d.startswith("scikit-learn")]
    assert not sklearn.specifier.contains("1.5.2") and sklearn.specifier.contains("1.6.0")
    GroupKFold(n_splits=2, shuffle=True, random_state=0)
