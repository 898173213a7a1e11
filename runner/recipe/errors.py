"""Turn pydantic validation errors into located, helpful ``Problem`` lines."""

from __future__ import annotations

import types
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel, Discriminator, Tag

from ..errors import Problem
from ..families import SECTIONS
from ..hints import closest, did_you_mean
from ..yamlio import Document, KeyPath, dotted, problem


def _pick_member(inner: Any, disc: Discriminator, value: Any) -> Any:
    tag = disc.discriminator(value) if callable(disc.discriminator) else None
    for option in get_args(inner):
        cls, *meta = get_args(option) or (option,)
        if any(isinstance(m, Tag) and m.tag == tag for m in meta):
            return cls
    return None


def resolve(ann: Any, value: Any) -> Any:
    """The concrete type an annotation takes for ``value`` (unwraps Optional and tagged unions)."""
    origin = get_origin(ann)
    if origin is Annotated:
        inner, *meta = get_args(ann)
        disc = next((m for m in meta if isinstance(m, Discriminator)), None)
        if disc is None or get_origin(inner) not in (Union, types.UnionType):
            return resolve(inner, value)  # a one-member union collapses to its member
        return _pick_member(inner, disc, value)
    if origin in (Union, types.UnionType):
        if any(get_origin(a) is Annotated for a in get_args(ann)):
            return None  # a tagged union whose discriminator we do not have: do not guess
        for arg in get_args(ann):
            if arg is not type(None) and (found := resolve(arg, value)) is not None:
                return found
        return None
    return ann


def _annotation(field: Any) -> Any:
    """A field's annotation with the metadata pydantic moved off it (e.g. a Discriminator)."""
    return Annotated[(field.annotation, *field.metadata)] if field.metadata else field.annotation


def model_at(root: type[BaseModel], data: Any, path: KeyPath) -> type[BaseModel] | None:
    """The model class that validates the mapping at ``path`` of ``data``."""
    ann: Any = root
    node = data
    for part in path:
        cls = resolve(ann, node)
        if isinstance(cls, type) and issubclass(cls, BaseModel):
            field = cls.model_fields.get(part) if isinstance(part, str) else None
            if field is None:
                return None
            ann = _annotation(field)
        elif get_origin(cls) in (list, dict):
            ann = get_args(cls)[-1]
        else:
            return None
        node = node.get(part) if isinstance(node, dict) else (
            node[part] if isinstance(node, list) and isinstance(part, int) and part < len(node) else None)
    cls = resolve(ann, node)
    return cls if isinstance(cls, type) and issubclass(cls, BaseModel) else None


def _walk(data: Any, loc: tuple) -> tuple[KeyPath, list]:
    """Split a pydantic ``loc`` into the part that exists in ``data`` and the rest
    (union tags, or a missing key)."""
    node, path, rest = data, [], []
    for el in loc:
        if isinstance(node, dict) and isinstance(el, str) and el in node:
            node, rest = node[el], []
            path.append(el)
        elif isinstance(node, list) and isinstance(el, int) and 0 <= el < len(node):
            node, rest = node[el], []
            path.append(el)
        else:
            rest.append(el)
    return tuple(path), rest


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _unknown_plugin(doc: Document, path: KeyPath, err: dict, known: dict[str, list[str]]) -> Problem:
    section = path[0]
    fam = SECTIONS[section]
    tag = err["ctx"]["tag"]
    names = known[fam.name]
    message = f"unknown {fam.name} plugin '{tag}'{did_you_mean(str(tag), names)} known: {', '.join(names)}"
    if section == "augment":
        return problem(doc.mark(path + (tag,), key=True), dotted(path + (tag,)), message)
    if fam.selector not in (doc.data.get(section) or {}):  # the section's default is not usable
        return problem(doc.mark(path, key=True), dotted(path + (fam.selector,)),
                       f"{message} (set {section}.{fam.selector})")
    return problem(doc.mark(path + (fam.selector,)), dotted(path + (fam.selector,)), message)


def _no_selector(doc: Document, path: KeyPath) -> Problem:
    """A plugin section without its selector key, or an augment item that is not one-key."""
    if not path or path[0] == "augment":
        return problem(doc.mark(path), dotted(path), "each augmentation is a one-key mapping like '- flip: {p: 0.5}'")
    selector = SECTIONS[path[0]].selector
    node = doc.data
    for part in path:
        node = node[part]
    typo = next((k for k in node if isinstance(k, str) and closest(k, [selector])), None) \
        if isinstance(node, dict) else None
    if typo is not None:
        return problem(doc.mark(path + (typo,), key=True), dotted(path + (typo,)),
                       f"unknown key '{typo}'; did you mean '{selector}'?")
    return problem(doc.mark(path, key=True), dotted(path + (selector,)), f"missing required key '{selector}'")


def to_problem(doc: Document, root: type[BaseModel], err: dict, known: dict[str, list[str]]) -> Problem:
    """One pydantic error dict -> one located Problem."""
    path, rest = _walk(doc.data, tuple(err["loc"]))
    kind = err["type"]
    if kind == "union_tag_invalid" and path and path[0] in SECTIONS:
        return _unknown_plugin(doc, path, err, known)
    if kind == "union_tag_not_found":
        return _no_selector(doc, path)
    if kind == "missing":
        key = next((r for r in reversed(rest) if isinstance(r, str)), "?")
        return problem(doc.mark(path, key=True), dotted(path + (key,)), f"missing required key '{key}'")
    if kind == "extra_forbidden":
        cls = model_at(root, doc.data, path[:-1])
        allowed = sorted(cls.model_fields) if cls else []
        hint = did_you_mean(str(path[-1]), allowed)
        listing = f" (allowed: {', '.join(allowed)})" if allowed and not hint else ""
        return problem(doc.mark(path, key=True), dotted(path), f"unknown key '{path[-1]}'{hint}{listing}")
    message = err["msg"]
    if kind.startswith("value_error"):
        message = message.removeprefix("Value error, ")
    if not isinstance(err.get("input"), (dict, list)):
        message += f" (got {_short(err.get('input'))})"
    return problem(doc.mark(path), dotted(path), message)


def to_problems(doc: Document, root: type[BaseModel], errors: list[dict],
                known: dict[str, list[str]]) -> list[Problem]:
    """All errors as Problems; a missing key that a misspelt key stands for is reported once,
    as the misspelling ("unknown key 'nmae'; did you mean 'name'?")."""
    misspelt = set()
    for err in errors:
        if err["type"] == "extra_forbidden":
            path, _ = _walk(doc.data, tuple(err["loc"]))
            cls = model_at(root, doc.data, path[:-1])
            close = closest(str(path[-1]), cls.model_fields if cls else [])
            if close:
                misspelt.add((path[:-1], close))
    out = []
    for err in errors:
        if err["type"] == "missing":
            path, rest = _walk(doc.data, tuple(err["loc"]))
            key = next((r for r in reversed(rest) if isinstance(r, str)), None)
            if (path, key) in misspelt:
                continue
        out.append(to_problem(doc, root, err, known))
    return out
