"""Safe YAML loading that remembers where every key and value came from.

We compose the YAML into ruamel's node graph and convert it ourselves to plain Python
(dict, list, str, int, float, bool, None), so that:

* only the YAML core schema is accepted: any other tag (``!!python/object``, ``!custom``)
  is refused with its line -- nothing is constructed or evaluated;
* duplicate keys are refused;
* alias expansion is bounded (a "billion laughs" document stops at ``MAX_NODES``);
* every key path maps to a ``Mark`` (file, line, column) for error messages.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import Problem, RecipeError

MAX_NODES = 100_000  # plain values produced, aliases expanded; a recipe has a few hundred
MAX_DEPTH = 64
MAX_BYTES = 1_000_000

_CORE = "tag:yaml.org,2002:"
KeyPath = tuple  # of str (mapping keys) and int (sequence indexes)


@dataclass(frozen=True)
class Mark:
    """Where a key or value came from. ``line``/``col`` are 1-based; None for overrides."""

    source: str
    line: int | None = None
    col: int | None = None


@dataclass
class Document:
    """Plain data plus the position of each key (``keys``) and value (``values``) by path."""

    data: Any
    source: str
    keys: dict[KeyPath, Mark] = field(default_factory=dict)
    values: dict[KeyPath, Mark] = field(default_factory=dict)

    def mark(self, path: KeyPath, *, key: bool = False) -> Mark:
        """The mark of ``path`` or of its nearest ancestor that has one."""
        table = self.keys if key else self.values
        for end in range(len(path), -1, -1):
            for tbl in (table, self.keys, self.values):
                if path[:end] in tbl:
                    return tbl[path[:end]]
        return Mark(self.source, 1, 1)


def problem(mark: Mark, key_path: str, message: str) -> Problem:
    return Problem(mark.source, mark.line, mark.col, key_path, message)


def _mark(source: str, node: Any) -> Mark:
    m = node.start_mark
    return Mark(source, m.line + 1, m.column + 1)


def _tag(node: Any) -> str:
    tag = node.tag
    return str(getattr(tag, "value", tag) or "")


def _int(text: str) -> int:
    t = text.replace("_", "")
    sign = -1 if t.startswith("-") else 1
    t = t.lstrip("+-")
    for prefix, base in (("0x", 16), ("0o", 8), ("0b", 2)):
        if t.lower().startswith(prefix):
            return sign * int(t[2:], base)
    return sign * int(t, 10)


def _float(text: str) -> float:
    t = text.replace("_", "").lower()
    if t in (".inf", "+.inf"):
        return math.inf
    if t == "-.inf":
        return -math.inf
    if t == ".nan":
        return math.nan
    return float(t)


class _Converter:
    """Node graph -> plain Python, recording marks, refusing what is not plain data."""

    def __init__(self, doc: Document):
        self.doc = doc
        self.nodes = 0

    def fail(self, node: Any, path: KeyPath, message: str) -> None:
        raise RecipeError([problem(_mark(self.doc.source, node), dotted(path), message)])

    def convert(self, node: Any, path: KeyPath = ()) -> Any:
        self.nodes += 1
        if self.nodes > MAX_NODES:
            self.fail(node, path, f"document expands to more than {MAX_NODES} values "
                      "(an alias bomb?); write the values out instead of nesting aliases")
        if len(path) > MAX_DEPTH:
            self.fail(node, path, f"nested deeper than {MAX_DEPTH} levels")
        self.doc.values[path] = _mark(self.doc.source, node)
        tag = _tag(node)
        kind = type(node).__name__
        if kind == "MappingNode" and tag == _CORE + "map":
            return self._mapping(node, path)
        if kind == "SequenceNode" and tag == _CORE + "seq":
            return [self.convert(item, path + (i,)) for i, item in enumerate(node.value)]
        if kind == "ScalarNode":
            return self._scalar(node, path, tag)
        self.fail(node, path, f"the YAML tag '{tag}' is not allowed: recipes hold plain data "
                  "(mappings, lists, strings, numbers, booleans, null); remove the tag")

    def _mapping(self, node: Any, path: KeyPath) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if type(key_node).__name__ != "ScalarNode":
                self.fail(key_node, path, "mapping keys must be plain strings")
            if _tag(key_node) == _CORE + "merge":
                self.fail(key_node, path, "merge keys ('<<') are not supported; use 'extends:' "
                          "to build on another recipe")
            key = str(key_node.value)
            if key in out:
                first = self.doc.keys[path + (key,)]
                self.fail(key_node, path + (key,), f"duplicate key '{key}' (first given at line "
                          f"{first.line}); keep one of them")
            self.doc.keys[path + (key,)] = _mark(self.doc.source, key_node)
            out[key] = self.convert(value_node, path + (key,))
        return out

    def _scalar(self, node: Any, path: KeyPath, tag: str) -> Any:
        text = node.value
        try:
            if tag == _CORE + "str" or tag == _CORE + "timestamp":
                return text
            if tag == _CORE + "null":
                return None
            if tag == _CORE + "bool":
                return text.lower() in ("true", "yes", "on")
            if tag == _CORE + "int":
                return _int(text)
            if tag == _CORE + "float":
                return _float(text)
        except ValueError:
            shown = text if len(text) <= 24 else text[:20] + "..."
            self.fail(node, path, f"cannot read {shown!r} ({len(text)} characters) as a number")
        self.fail(node, path, f"the YAML tag '{tag}' is not allowed: recipes hold plain data; "
                  "remove the tag")


def dotted(path: KeyPath) -> str:
    return ".".join(str(p) for p in path)


def _syntax_problem(source: str, exc: Exception) -> Problem:
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    what = " ".join(str(x) for x in (getattr(exc, "context", None), getattr(exc, "problem", None)) if x)
    what = what or str(exc).splitlines()[0]
    if mark is not None:
        return Problem(source, mark.line + 1, mark.column + 1, "", f"YAML syntax error: {what}")
    return Problem(source, None, None, "", f"YAML syntax error: {what}")


def parse_text(text: str, source: str) -> Document:
    """Parse YAML ``text``; ``source`` names it in errors (a path or an override)."""
    from ruamel.yaml import YAML
    from ruamel.yaml.error import YAMLError

    doc = Document(data=None, source=source)
    yaml = YAML(typ="rt", pure=True)
    try:
        node = yaml.compose(text)
    except YAMLError as exc:
        raise RecipeError([_syntax_problem(source, exc)]) from None
    except RecursionError:
        raise RecipeError([Problem(source, None, None, "", "YAML nested too deeply")]) from None
    if node is not None:
        doc.data = _Converter(doc).convert(node)
    return doc


def load_file(path: Path) -> Document:
    """Read and parse a YAML file, with one-line errors for unreadable files."""
    source = str(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise RecipeError([Problem(source, None, None, "", "no such file")]) from None
    except (IsADirectoryError, PermissionError) as exc:
        raise RecipeError([Problem(source, None, None, "", f"cannot read: {exc.strerror}")]) from None
    except ValueError:  # the operating system cannot take the name (a NUL byte in it)
        raise RecipeError([Problem(source, None, None, "", "not a valid file name")]) from None
    if len(raw) > MAX_BYTES:
        raise RecipeError([Problem(source, None, None, "", f"file is larger than {MAX_BYTES} bytes")])
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RecipeError([Problem(source, None, None, "",
                                   f"not UTF-8 text (byte {exc.start}); save the recipe as UTF-8")]) from None
    return parse_text(text, source)


def dump(data: Any) -> str:
    """Plain data -> YAML text (block style, key order kept)."""
    import io

    from ruamel.yaml import YAML

    yaml = YAML(typ="safe", pure=True)
    yaml.default_flow_style = False
    yaml.sort_base_mapping_type_on_output = False
    buf = io.StringIO()
    yaml.dump(data, buf)
    return buf.getvalue()
