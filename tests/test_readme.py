"""The README stays true: its recipe reference and plugin family table are what the recipe models
and ``gaitrun.families`` generate, its quick start has the two commands CI reads, and its
commands exist."""

from __future__ import annotations

import subprocess
from pathlib import Path

from gaitrun.recipe.reference import END, FAMILY_END, FAMILY_START, START, render, render_families

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text()


def test_recipe_reference_in_sync():
    block = README[README.index(START): README.index(END) + len(END)]
    assert block == render(), "run: python -m gaitrun.recipe.reference --write README.md"


def test_plugin_family_table_in_sync():
    """The README's plugin contract is the family table (``gaitrun.families.FAMILIES``)."""
    block = README[README.index(FAMILY_START): README.index(FAMILY_END) + len(FAMILY_END)]
    assert block == render_families(), "run: python -m gaitrun.recipe.reference --write README.md"


def _command_after(marker: str) -> str:
    out = subprocess.run(["awk", "-v", f"m=<!-- {marker} -->",
                          'f && /^[^`]/ && NF {print; exit} $0 ~ m {f=1}', str(REPO / "README.md")],
                         capture_output=True, text=True, check=True)
    return out.stdout.strip()


def test_quick_start_has_the_two_commands():
    main = _command_after("main-command")
    tests = _command_after("test-command")
    assert main.startswith("python3 -m venv .venv") and main.endswith("gaitrun recipes/3dcnn_prune40.yaml")
    assert "pip install" in tests and "pytest" in tests
    assert (REPO / "recipes" / "3dcnn_prune40.yaml").is_file()
    assert "readme_line test-command" in (REPO / ".ci" / "run").read_text()
