"""gaitrun's custom Keras layers (``gaitrun.layers``): a saved GaitSet model loads in a fresh
Python following exactly the README's "Loading a run's model outside gaitrun" instructions."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
README_PATH = "artifacts/gaitset_casiab/RUN/folds/0/model.keras"


def _readme_snippet() -> str:
    text = (REPO / "README.md").read_text()
    block = text[text.index("<!-- load-model -->"):]
    code = block.split("```python\n", 1)[1].split("```", 1)[0]
    assert README_PATH in code
    return code


def _saved_gaitset(tmp_path: Path) -> tuple[Path, float]:
    from gaitrun.plugins.architectures import gaitset

    model = gaitset.build(input_shape=(5, 16, 12, 1), num_classes=3,
                          params=gaitset.Params(width=0.125, bins=(1, 2, 4)))
    path = tmp_path / "model.keras"
    model.save(path)
    x = np.linspace(0, 1, 5 * 16 * 12, dtype="float32").reshape(1, 5, 16, 12, 1)
    return path, float(np.asarray(model(x)).sum())


def _run(code: str, path: Path) -> subprocess.CompletedProcess:
    probe = ("\nimport numpy as np\nx = np.linspace(0, 1, 5 * 16 * 12, dtype='float32').reshape(1, 5, 16, 12, 1)\n"
             "print(float(np.asarray(model(x)).sum()))\n")
    return subprocess.run([sys.executable, "-c", code.replace(README_PATH, str(path)) + probe],
                          capture_output=True, text=True, timeout=300, cwd=path.parent)


def test_a_saved_gaitset_model_loads_as_the_readme_says(tmp_path):
    path, expected = _saved_gaitset(tmp_path)
    code = _readme_snippet()
    res = _run(code, path)
    assert res.returncode == 0, res.stderr
    assert abs(float(res.stdout.split()[-1]) - expected) < 1e-3 * max(1.0, abs(expected))

    without = "\n".join(line for line in code.splitlines() if "gaitrun.layers" not in line)
    res = _run(without, path)  # the import is what makes it load
    assert res.returncode != 0 and "Could not locate class 'FramesToBatch'" in res.stderr


def _imports(path: Path) -> set[str]:
    """The modules ``path`` imports (relative imports resolved against its package)."""
    import ast

    package = ["gaitrun", *path.relative_to(REPO / "runner").parent.parts] if path.is_relative_to(REPO / "runner") \
        else ["gaitrun", *path.relative_to(REPO).parent.parts]
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = package[:len(package) - node.level + 1] if node.level else []
            out.add(".".join([*base, *(node.module or "").split(".")]).strip("."))
    return out


def test_the_pruning_core_owns_its_layers_and_needs_no_plugin():
    """The custom layers that pruning and loading depend on live in the core (``gaitrun.layers``),
    and the pruning core imports no plugin; the ``l1_percentile`` plugin uses the public
    ``gaitrun.prune`` entry point only, so the two do not point at each other."""
    assert not (REPO / "plugins" / "architectures" / "_layers.py").exists()
    core = [*sorted((REPO / "runner" / "prune").glob("*.py")), REPO / "runner" / "layers.py",
            REPO / "runner" / "keras_io.py"]
    for path in core:
        assert not [m for m in _imports(path) if m.startswith("gaitrun.plugins")], path
    plugin = _imports(REPO / "plugins" / "pruners" / "l1_percentile.py")
    assert {m for m in plugin if m.startswith("gaitrun")} == {"gaitrun.prune"}
    from gaitrun.prune import graph

    assert "gaitrun.layers" in _imports(REPO / "runner" / "prune" / "layers.py") | _imports(Path(graph.__file__))
