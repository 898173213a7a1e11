"""Safe YAML loading: plain data only, duplicate keys refused, aliases bounded, marks kept."""

from __future__ import annotations

import pytest

from gaitrun.errors import RecipeError
from gaitrun.yamlio import MAX_NODES, parse_text


def _error(text: str) -> str:
    with pytest.raises(RecipeError) as info:
        parse_text(text, "r.yaml")
    assert len(info.value.problems) == 1
    return str(info.value.problems[0])


def test_plain_values_and_marks():
    doc = parse_text("a: 1\nb:\n  - 2.5\n  - true\n  - null\n  - text\nc: 0x1f\n", "r.yaml")
    assert doc.data == {"a": 1, "b": [2.5, True, None, "text"], "c": 31}
    assert (doc.keys[("b",)].line, doc.keys[("b",)].col) == (2, 1)
    assert (doc.values[("b", 1)].line, doc.values[("b", 1)].col) == (4, 5)


def test_yaml_11_booleans_stay_strings():
    assert parse_text("a: yes\nb: off\n", "r.yaml").data == {"a": "yes", "b": "off"}


@pytest.mark.parametrize("tag", ["!!python/object:os.system", "!!python/object/apply:os.system",
                                 "!!python/name:os.system", "!custom", "!!binary"])
def test_python_and_custom_tags_refused(tag):
    assert _error(f"a: {tag} x\n").startswith("r.yaml:1:4: a: the YAML tag")


def test_tagged_mapping_refused():
    assert "not allowed" in _error("a: !!python/object:collections.OrderedDict {x: 1}\n")


def test_duplicate_key_refused_with_both_lines():
    assert _error("a: 1\nb: 2\na: 3\n") == "r.yaml:3:1: a: duplicate key 'a' (first given at line 1); keep one of them"


def test_alias_bomb_bounded():
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 7):
        prev = f"*a{i - 1}"
        lines.append(f"a{i}: &a{i} [{', '.join([prev] * 10)}]")
    message = _error("\n".join(lines) + "\n")
    assert f"more than {MAX_NODES} values" in message


def test_small_aliases_allowed():
    assert parse_text("a: &x [1, 2]\nb: *x\n", "r.yaml").data == {"a": [1, 2], "b": [1, 2]}


def test_syntax_error_has_position():
    assert _error("a: [1, 2\nb: 3\n").startswith("r.yaml:2:")
    assert _error("a:\n\tb: 1\n").startswith("r.yaml:2:1: YAML syntax error")


def test_merge_keys_refused():
    assert "merge keys" in _error("base: &b {x: 1}\nother:\n  <<: *b\n")


def test_huge_number_and_deep_nesting():
    assert "as a number" in _error("a: " + "9" * 5000 + "\n")
    assert "nest" in _error("a: " + "[" * 2000 + "]" * 2000 + "\n")


def test_non_string_keys_refused():
    assert "keys must be plain strings" in _error("? [a, b]\n: 1\n")
