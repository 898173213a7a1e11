"""The scripts in bench/ import gaitrun's internals inside their functions, so a moved function
only shows when someone runs the bench (bench/data_scale.py failed so after ``augmenters`` moved
to ``gaitrun.train.parts``). Every ``from gaitrun... import name`` in bench/ must resolve."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"


def _imports() -> list[tuple[str, str, str]]:
    found = []
    for script in sorted(BENCH.glob("*.py")):
        for node in ast.walk(ast.parse(script.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "gaitrun":
                found += [(script.name, node.module, alias.name) for alias in node.names]
    return found


def test_bench_scripts_import_gaitrun():
    assert len(_imports()) > 20  # the scan sees the imports inside functions


@pytest.mark.parametrize(("script", "module", "name"), _imports())
def test_every_gaitrun_import_in_bench_resolves(script, module, name):
    mod = importlib.import_module(module)
    if not hasattr(mod, name):
        importlib.import_module(f"{module}.{name}")  # a submodule; ImportError names what moved
