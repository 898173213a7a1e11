"""A third-party package with a good and broken plugins (``tests/acme_plugin``, installed into a
temporary folder for these tests only): listings and the schema show the broken ones flagged,
validation fails only for recipes that name them, and a plugin's bug leaves a traceback."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import BASE_RECIPE

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def acme_env(tmp_path_factory) -> dict[str, str]:
    """An environment whose Python also sees the installed ``gaitrun-acme-plugin``."""
    tmp = tmp_path_factory.mktemp("acme")
    shutil.copytree(REPO / "tests" / "acme_plugin", tmp / "src")
    import importlib.util

    offline = ["--no-build-isolation"] if importlib.util.find_spec("setuptools") else []  # faster
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", *offline,
                    "--target", str(tmp / "site"), str(tmp / "src")], check=True, capture_output=True)
    env = dict(os.environ, PYTHONPATH=str(tmp / "site"), GAITRUN_CACHE=str(tmp / "cache"))
    env.pop("GAITRUN_DEBUG", None)
    return env


def gaitrun(env: dict[str, str], *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "gaitrun", *map(str, args)], env=env, cwd=cwd,
                          capture_output=True, text=True, timeout=600)


def test_listing_keeps_every_good_plugin_and_flags_the_broken(acme_env):
    res = gaitrun(acme_env, "plugins", "--json")
    assert res.returncode == 0, res.stderr
    rows = {(r["family"], r["name"]): r for r in json.loads(res.stdout)}
    assert rows[("architectures", "acme_mlp")]["broken"] is None
    assert ("architectures", "cnn3d") in rows and ("augmentations", "flip") in rows
    assert rows[("architectures", "acme_nobuild")]["broken"] == (
        "architectures plugin 'acme_nobuild' (entry point 'architectures.acme_nobuild' of gaitrun-acme-plugin) "
        "does not fit the family: it lacks a function 'build(*, input_shape: tuple[int, ...], num_classes: int, "
        "params: BaseModel)'")
    assert "failed to import: ModuleNotFoundError" in rows[("augmentations", "acme_noise")]["broken"]
    table = gaitrun({**acme_env, "COLUMNS": "250"}, "plugins", "architectures")
    assert table.returncode == 0 and "acme_nobuild (broken)" in table.stdout and "acme_mlp" in table.stdout


def test_schema_lists_the_good_and_flags_the_broken(acme_env):
    res = gaitrun(acme_env, "schema")
    assert res.returncode == 0, res.stderr
    schema = json.loads(res.stdout)
    assert "acme_mlp" in res.stdout and "Model_cnn3d" in res.stdout
    broken = {(b["family"], b["name"]) for b in schema["x-gaitrun-broken-plugins"]}
    assert broken == {("architectures", "acme_nobuild"), ("augmentations", "acme_noise")}


def test_validate_reports_per_file_and_fails_only_recipes_naming_a_broken_plugin(acme_env, tmp_path):
    no_augment = BASE_RECIPE.replace("augment:\n  - shift: {max_px: 1}\n", "")
    files = {
        "good.yaml": no_augment.replace("arch: simple_cnn", "arch: acme_mlp").replace("{width: 0.25}", "{}"),
        "broken.yaml": no_augment.replace("arch: simple_cnn", "arch: acme_nobuild").replace("{width: 0.25}", "{}"),
        "typo.yaml": no_augment.replace("arch: simple_cnn", "arch: acme_mlpp"),
        "noise.yaml": BASE_RECIPE.replace("- shift: {max_px: 1}", "- acme_noise: {}"),
    }
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    res = gaitrun(acme_env, "validate", *files, cwd=tmp_path)
    assert res.returncode == 2
    assert res.stdout.splitlines() == [f"good.yaml: ok (recipe hash {_hash(acme_env, tmp_path)})"]
    err = res.stderr.splitlines()
    assert err[0].startswith("broken.yaml:9:9: model.arch: architectures plugin 'acme_nobuild' (entry point")
    assert err[0].endswith("it lacks a function 'build(*, input_shape: tuple[int, ...], num_classes: int, params: BaseModel)'")
    assert err[1].startswith("typo.yaml:9:9: model.arch: unknown architectures plugin 'acme_mlpp'; "
                             "did you mean 'acme_mlp'? known: acme_buggy, acme_mlp, acme_nobuild, cnn2d_bmvc")
    assert err[2].startswith("noise.yaml:9:5: augment.0.acme_noise: augmentations plugin 'acme_noise'")
    assert "failed to import: ModuleNotFoundError: No module named 'acme_missing_dependency'" in err[2]
    assert len(err) == 3


def _hash(env: dict[str, str], folder: Path) -> str:
    res = gaitrun(env, "validate", "good.yaml", "--json", cwd=folder)
    return json.loads(res.stdout)["results"][0]["hash"]


FAST = ["--set", "data.max_samples=60", "--set", "cv={scheme: holdout, fraction: 0.5, group_by: null}",
        "--set", "model={arch: acme_buggy}", "--set", "augment=[]", "--artifacts", "art"]


def test_a_plugin_bug_leaves_a_traceback_in_the_run_folder(acme_env, tmp_path):
    (tmp_path / "r.yaml").write_text(BASE_RECIPE)
    res = gaitrun(acme_env, "run", "r.yaml", *FAST, "--quiet", cwd=tmp_path)
    run = next((tmp_path / "art" / "digits_test").iterdir()).relative_to(tmp_path)
    assert res.returncode == 1
    assert res.stderr.splitlines()[-1] == (
        f"gaitrun: error: stage 'train' failed: RuntimeError: acme: no layer plan for input shape (8, 8, 3) "
        f"(a bug: traceback in {run}/traceback.txt; report it with that file, or rerun with GAITRUN_DEBUG=1; "
        f"after a fix: 'gaitrun resume {run}')")
    trace = (tmp_path / run / "traceback.txt").read_text()
    assert trace.startswith("Traceback (most recent call last):") and 'acme_plugins/buggy.py", line' in trace

    debug = gaitrun({**acme_env, "GAITRUN_DEBUG": "1"}, "run", "r.yaml", *FAST, "--quiet", cwd=tmp_path)
    assert debug.returncode == 1 and "Traceback (most recent call last)" in debug.stderr
    assert debug.stderr.rstrip().endswith("RuntimeError: acme: no layer plan for input shape (8, 8, 3)")
