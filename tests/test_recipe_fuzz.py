"""Property tests: no mutated recipe, flag or override makes gaitrun crash with a traceback.

Every outcome must be exit code 0 (still valid) or 2 with one located line per problem,
and nothing may be written under artifacts/.
"""

from __future__ import annotations

import re
from pathlib import Path

from conftest import BASE_RECIPE
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gaitrun.cli import main
from gaitrun.yamlio import dump, parse_text

REPO = Path(__file__).resolve().parents[1]
RECIPES = [BASE_RECIPE] + [p.read_text() for p in sorted((REPO / "recipes").glob("*.yaml"))]
LOCATED = re.compile(r"^((?:'[^']*'|\S+?):\d+:\d+: |--set .+?: |(?:'[^']*'|\S+?): )")  # quoted if spaces

garbage = st.one_of(st.integers(min_value=-10**30, max_value=10**30), st.floats(allow_nan=True),
                    st.text(max_size=30), st.booleans(), st.none(), st.lists(st.integers(), max_size=3),
                    st.dictionaries(st.text(max_size=5), st.integers(), max_size=2),
                    st.just("9" * 5000), st.just("ü∂ñîçødé"))


def _paths(data, prefix=()):
    yield prefix
    if isinstance(data, dict):
        for k, v in data.items():
            yield from _paths(v, prefix + (k,))
    elif isinstance(data, list):
        for i, v in enumerate(data):
            yield from _paths(v, prefix + (i,))


def _mutate(data, path, action, value):
    if not path:
        return value if action == "replace" else data
    parent = data
    for part in path[:-1]:
        parent = parent[part]
    key = path[-1]
    if action == "delete":
        del parent[key]
    elif action == "rename" and isinstance(parent, dict):
        parent[f"{key}x"] = parent.pop(key)
    elif action == "nest":
        parent[key] = {"a": {"b": {"c": [parent[key]] * 3}}}
    else:
        parent[key] = value
    return data


def _check(tmp_path: Path, text: str, extra=()) -> None:
    recipe = tmp_path / "fuzz.yaml"
    recipe.write_text(text, encoding="utf-8")
    import contextlib
    import io

    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = main(["validate", str(recipe), *extra])
    assert code in (0, 2)
    lines = err.getvalue().splitlines()
    if code == 2:
        assert lines and all(LOCATED.match(line) or ": error:" in line for line in lines), lines  # or a usage error
    assert "Traceback" not in err.getvalue()
    assert not (tmp_path / "artifacts").exists()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_mutated_recipes_never_crash(tmp_path, data):
    original = data.draw(st.sampled_from(RECIPES))
    tree = parse_text(original, "r.yaml").data
    paths = list(_paths(tree))
    path = data.draw(st.sampled_from(paths))
    action = data.draw(st.sampled_from(["replace", "delete", "rename", "nest"]))
    mutated = _mutate(tree, path, action, data.draw(garbage))
    _check(tmp_path, dump(mutated) if mutated is not None else "")


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.text(max_size=200), cut=st.integers(min_value=0, max_value=len(BASE_RECIPE)))
def test_garbage_yaml_never_crashes(tmp_path, text, cut):
    _check(tmp_path, BASE_RECIPE[:cut] + text)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(key=st.text(max_size=30), value=st.text(max_size=30))
def test_garbage_overrides_never_crash(tmp_path, key, value):
    _check(tmp_path, BASE_RECIPE, ["--set", f"{key}={value}"])


FLAGS = st.sampled_from(["--set", "--quiet", "--json", "--strict", "--artifacts", "--percentile", "-x", "--",
                         "--help=no", "validate", "plan", "plugins", "schema", "nonsense", "=", "a=b", "-"])


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(command=st.sampled_from(["validate", "plan", "plugins", "resume", "prune", "export", "bench", "data"]),
       args=st.lists(st.one_of(FLAGS, st.text(max_size=12)), max_size=5))
def test_garbage_flags_never_crash(tmp_path, command, args):
    import contextlib
    import io

    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            code = main([command, *args])
        except SystemExit as exc:  # --help prints help and exits 0
            code = exc.code
    assert code in (0, 2), err.getvalue()
    assert "Traceback" not in err.getvalue()
    assert all(LOCATED.match(line) or ": error:" in line for line in err.getvalue().splitlines() if line.strip())
