"""Recipe composition: ``extends:`` base recipes and ``--set key.path=value`` overrides.

Both keep the marks of every key, so errors point into the file (or the override) that
gave the offending value.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

from ..errors import Problem, RecipeError
from ..yamlio import Document, KeyPath, Mark, dotted, load_file, parse_text, problem

MAX_EXTENDS_DEPTH = 8


def _merge(base: Any, top: Any) -> Any:
    """Deep-merge mappings; lists and scalars of ``top`` replace those of ``base``."""
    if isinstance(base, dict) and isinstance(top, dict):
        out = dict(base)
        for key, value in top.items():
            out[key] = _merge(base[key], value) if key in base else value
        return out
    return top


def _rebase_marks(target: Document, src: Document, prefix: KeyPath = ()) -> None:
    for table_name in ("keys", "values"):
        dst, table = getattr(target, table_name), getattr(src, table_name)
        for path, mark in table.items():
            dst[prefix + path] = mark


def _extends_list(doc: Document) -> list[tuple[str, Mark]]:
    raw = doc.data.get("extends") if isinstance(doc.data, dict) else None
    if raw is None:
        return []
    items = raw if isinstance(raw, list) else [raw]
    out = []
    for i, item in enumerate(items):
        path = ("extends", i) if isinstance(raw, list) else ("extends",)
        if not isinstance(item, str) or not item:
            raise RecipeError([problem(doc.mark(path), "extends", "must be a file name or a list of them")])
        out.append((item, doc.mark(path)))
    return out


def load_composed(path: Path, _chain: tuple[Path, ...] = ()) -> Document:
    """Load ``path`` and everything it ``extends`` (relative to its folder), merged."""
    doc = load_file(path)
    if doc.data is None:
        doc.data = {}
    if not isinstance(doc.data, dict):
        raise RecipeError([problem(doc.mark(()), "", "a recipe must be a mapping of sections "
                                   "(name:, data:, model:, ...)")])
    bases = _extends_list(doc)
    if not bases:
        return doc
    merged = Document(data={}, source=doc.source)
    for name, mark in bases:
        base_path = (path.parent / name).resolve()
        if base_path in _chain + (path.resolve(),):
            raise RecipeError([problem(mark, "extends", f"'{name}' extends itself (a cycle)")])
        if len(_chain) >= MAX_EXTENDS_DEPTH:
            raise RecipeError([problem(mark, "extends", f"more than {MAX_EXTENDS_DEPTH} levels of extends")])
        if not base_path.is_file():
            raise RecipeError([problem(mark, "extends", f"base recipe '{name}' not found "
                                       f"(looked for {base_path}); paths are relative to the recipe's folder")])
        base = load_composed(base_path, _chain + (path.resolve(),))
        merged.data = _merge(merged.data, base.data)
        _rebase_marks(merged, base)
    own = {k: v for k, v in doc.data.items() if k != "extends"}
    merged.data = _merge(merged.data, copy.deepcopy(own))
    _rebase_marks(merged, doc)
    return merged


def _parse_path(text: str) -> KeyPath:
    return tuple(int(p) if re.fullmatch(r"-?[0-9]+", p) else p for p in text.split("."))


def _set_path(data: dict, path: KeyPath, value: Any, source: str, text: str) -> None:
    node: Any = data
    for i, part in enumerate(path[:-1]):
        nxt = path[i + 1]
        if isinstance(node, dict):
            if part not in node or node[part] is None:
                node[part] = [] if isinstance(nxt, int) else {}
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and -len(node) <= part < len(node):
            node = node[part]
        else:
            raise _override_error(source, dotted(path[: i + 1]), f"cannot descend into {dotted(path[:i]) or 'the recipe'}")
    last = path[-1]
    if isinstance(node, dict):
        node[last] = value
    elif isinstance(node, list) and isinstance(last, int) and -len(node) <= last < len(node):
        node[last] = value
    else:
        raise _override_error(source, dotted(path), "no such list item or key to set")


def _override_error(source: str, key_path: str, message: str) -> RecipeError:
    return RecipeError([Problem(source, None, None, key_path, message)])


def apply_override(doc: Document, text: str) -> None:
    """Apply one ``key.path=value`` override (value read as YAML) to ``doc`` in place."""
    source = f"--set {text}"
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key or any(not p for p in key.split(".")):
        raise _override_error(source, "", "expected key.path=value, e.g. --set train.epochs=5")
    path = _parse_path(key)
    if path[0] in ("extends",):
        raise _override_error(source, key, "'extends' cannot be overridden")
    try:
        value_doc = parse_text(raw if raw.strip() else "''", source)
    except RecipeError as exc:  # positions inside a one-line value would only confuse
        raise RecipeError([Problem(source, None, None, key, p.message) for p in exc.problems]) from None
    _set_path(doc.data, path, value_doc.data, source, text)
    mark = Mark(source)
    for table in (doc.keys, doc.values):
        for p in [p for p in table if p[: len(path)] == path]:
            del table[p]
        table[path] = mark
    for sub in value_doc.values:
        doc.values[path + sub] = mark
        doc.keys[path + sub] = mark


def compose(path: Path, overrides: list[str] = (), *, retarget: bool = False) -> Document:
    """The recipe at ``path`` with its bases merged and ``overrides`` applied (``retarget``:
    see ``drop_replaced_plugin_keys``)."""
    doc = load_composed(path)
    before = copy.deepcopy(doc.data) if retarget else None
    problems = []
    for text in overrides:
        try:
            apply_override(doc, text)
        except RecipeError as exc:
            problems += exc.problems
    if problems:
        raise RecipeError(problems)
    if before is not None:
        drop_replaced_plugin_keys(doc, before)
    return doc


def drop_replaced_plugin_keys(doc: Document, before: dict) -> None:
    """Where an override names another plugin (``--set deploy.target=tflite``), drop the keys of
    the plugin it replaces that no override set: in a run folder's resolved recipe they are
    defaults of the old plugin, which the new one would refuse."""
    from ..families import SECTIONS

    for section, fam in SECTIONS.items():
        old, new = before.get(section), doc.data.get(section)
        if not fam.selector or not isinstance(old, dict) or not isinstance(new, dict) \
                or old.get(fam.selector) == new.get(fam.selector):
            continue
        own = (set(new) - fam.core_fields()) if fam.flat else {"params"}
        for key in own:
            mark = doc.keys.get((section, key))
            if mark is None or not mark.source.startswith("--set "):
                new.pop(key, None)
