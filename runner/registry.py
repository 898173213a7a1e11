"""Plugin registries: one per family, a plain mapping from short name to plugin.

A plugin is a Python module that is cheap to import (no TensorFlow at module level) and
exposes, per family:

==============  ==========================================  ==============================
family          callables                                   declarations
==============  ==========================================  ==============================
datasets        ``scan(params, *, cache_dir, seed)``,       ``MODALITIES`` (set of
                ``load(sample, params)``                    modalities), ``KIND``
architectures   ``build(*, input_shape, num_classes,        ``INPUT_KIND``, ``EMBEDDING``
                params)``
augmentations   ``apply(x, *, params, seed, layout)``       ``MODALITIES`` (+ optional
                                                            ``LAYOUTS``)
cv              ``split(samples, *, params, seed)``         --
pruners         ``prune(model, *, params)``                 --
exporters       ``export(model, *, params, ctx)``           ``PRECISIONS``
==============  ==========================================  ==============================

and always ``Params``: a pydantic model with ``extra="forbid"`` for the plugin's recipe
keys, plus a docstring whose first paragraph is the one-line description.

Built-ins are listed in ``gaitrun.plugins.<family>.PLUGINS`` (name -> module, imported
when the registry is first used); other installed packages add
plugins through the entry-point group ``gaitrun.plugins``: the entry-point name is
``<family>.<plugin name>`` and its value the plugin module, e.g.::

    [project.entry-points."gaitrun.plugins"]
    "architectures.tiny_mlp" = "my_package.tiny_mlp"
"""

from __future__ import annotations

import difflib
import importlib
import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from types import ModuleType
from typing import Any

from pydantic import BaseModel

from .errors import PluginError

ENTRY_POINT_GROUP = "gaitrun.plugins"

MODALITIES = ("silhouette", "optical_flow", "rgb", "inertial")
SAMPLE_KINDS = ("sequence", "image", "inertial")
INPUT_KINDS = ("image", "stack2d", "clip3d", "frame_set", "sequence", "inertial")
PRECISIONS = ("fp32", "fp16", "int8")


def _subset_of(allowed: tuple[str, ...]) -> Callable[[Any], str | None]:
    def check(value: Any) -> str | None:
        if not isinstance(value, (set, frozenset, tuple, list)) or not value:
            return f"must be a non-empty set drawn from {list(allowed)}"
        bad = sorted(set(value) - set(allowed))
        return f"has unknown entries {bad}; allowed: {list(allowed)}" if bad else None

    return check


def _one_of(allowed: tuple[str, ...]) -> Callable[[Any], str | None]:
    return lambda v: None if v in allowed else f"must be one of {list(allowed)}, got {v!r}"


def _is_bool(value: Any) -> str | None:
    return None if isinstance(value, bool) else f"must be True or False, got {value!r}"


@dataclass(frozen=True)
class FamilySpec:
    """What a plugin of one family must provide."""

    name: str
    selector: str  # the recipe key that names the plugin (``arch``, ``adapter``, ...)
    callables: tuple[str, ...]
    declarations: dict[str, Callable[[Any], str | None]] = field(default_factory=dict)


FAMILIES: dict[str, FamilySpec] = {
    f.name: f
    for f in (
        FamilySpec("datasets", "adapter", ("scan", "load"),
                   {"MODALITIES": _subset_of(MODALITIES), "KIND": _one_of(SAMPLE_KINDS)}),
        FamilySpec("architectures", "arch", ("build",),
                   {"INPUT_KIND": _one_of(INPUT_KINDS), "EMBEDDING": _is_bool}),
        FamilySpec("augmentations", "name", ("apply",), {"MODALITIES": _subset_of(MODALITIES)}),
        FamilySpec("cv", "scheme", ("split",)),
        FamilySpec("pruners", "method", ("prune",)),
        FamilySpec("exporters", "target", ("export",), {"PRECISIONS": _subset_of(PRECISIONS)}),
    )
}


@dataclass(frozen=True)
class Plugin:
    """A registered plugin: its name, params model, declarations and module."""

    family: str
    name: str
    module: ModuleType
    params: type[BaseModel]
    description: str
    origin: str  # "built-in" or the distribution that provides it

    def declared(self, attr: str) -> Any:
        return getattr(self.module, attr)

    def impl(self, attr: str) -> Callable[..., Any]:
        return getattr(self.module, attr)


def _verify(family: FamilySpec, name: str, module: Any) -> list[str]:
    """Everything that keeps ``module`` from being a plugin of ``family``."""
    missing: list[str] = []
    if not isinstance(module, ModuleType):
        return [f"is a {type(module).__name__}, not a module"]
    params = getattr(module, "Params", None)
    if not (inspect.isclass(params) and issubclass(params, BaseModel)):
        missing.append("'Params' (a pydantic BaseModel subclass)")
    elif params.model_config.get("extra") != "forbid":
        missing.append("model_config extra='forbid' on 'Params'")
    for attr in family.callables:
        if not callable(getattr(module, attr, None)):
            missing.append(f"a function '{attr}'")
    for attr, check in family.declarations.items():
        if not hasattr(module, attr):
            missing.append(f"the declaration '{attr}'")
        elif (why := check(getattr(module, attr))) is not None:
            missing.append(f"a valid '{attr}' ({attr} {why})")
    if not (module.__doc__ or "").strip():
        missing.append("a module docstring (its first line is the description)")
    return missing


class Registry:
    """The plugins of one family, by name.

    Plugins are *declared* cheaply (a name and how to import the module) and *registered* --
    imported and checked against the family -- the first time they are needed, so that
    validating a recipe imports only the plugins it names. ``gaitrun plugins`` registers all.
    """

    def __init__(self, family: str):
        self.spec = FAMILIES[family]
        self._declared: dict[str, tuple[Callable[[], Any], str]] = {}
        self._plugins: dict[str, Plugin] = {}

    @property
    def family(self) -> str:
        return self.spec.name

    def _check_name(self, name: str) -> None:
        if not name.isidentifier() or name != name.lower():
            raise PluginError(f"{self.family} plugin name {name!r} must be a lower-case identifier",
                              family=self.family, plugin=name)

    def declare(self, name: str, loader: Callable[[], Any], *, origin: str = "built-in") -> None:
        """Make ``name`` known; ``loader()`` returns its module when it is first needed."""
        self._check_name(name)
        if name in self._declared and self._declared[name][1] != origin:
            raise PluginError(
                f"{self.family} plugin '{name}' from {origin} clashes with the one from "
                f"{self._declared[name][1]}; rename one of them", family=self.family, plugin=name)
        self._declared[name] = (loader, origin)

    def add(self, name: str, module: Any, *, origin: str = "built-in") -> Plugin:
        """Register ``module`` as plugin ``name``; refuse it if it does not fit the family."""
        self._check_name(name)
        problems = _verify(self.spec, name, module)
        if problems:
            raise PluginError(
                f"{self.family} plugin '{name}' ({origin}) does not fit the family: it lacks "
                + "; ".join(problems), family=self.family, plugin=name)
        known = self._plugins.get(name)
        if known is not None and known.module is not module:
            raise PluginError(
                f"{self.family} plugin '{name}' from {origin} clashes with the one from "
                f"{known.origin}; rename one of them", family=self.family, plugin=name)
        doc = " ".join((module.__doc__ or "").strip().split("\n\n")[0].split())
        plugin = Plugin(self.family, name, module, module.Params, doc, origin)
        self._plugins[name] = plugin
        self._declared.setdefault(name, (lambda: module, origin))
        return plugin

    def get(self, name: str) -> Plugin:
        if name in self._plugins:
            return self._plugins[name]
        if name not in self._declared:
            raise PluginError(unknown_message(self.family, name, self.names()),
                              family=self.family, plugin=name)
        loader, origin = self._declared[name]
        try:
            module = loader()
        except Exception as exc:  # a broken plugin package must not end in a traceback
            raise PluginError(f"{self.family} plugin '{name}' ({origin}) failed to import: "
                              f"{type(exc).__name__}: {exc}", family=self.family, plugin=name) from exc
        return self.add(name, module, origin=origin)

    def names(self) -> list[str]:
        return sorted(self._declared)

    def __iter__(self):
        return iter([self.get(n) for n in self.names()])

    def __contains__(self, name: object) -> bool:
        return name in self._declared


def unknown_message(family: str, name: str, known: list[str]) -> str:
    """``unknown architectures plugin 'cnn3dd'; did you mean 'cnn3d'? known: ...``"""
    close = difflib.get_close_matches(str(name), known, n=1, cutoff=0.6)
    hint = f"; did you mean '{close[0]}'?" if close else ""
    return f"unknown {family} plugin '{name}'{hint} known: {', '.join(known)}"


class Registries:
    """All families' registries. ``registries()`` builds the default one once."""

    def __init__(self) -> None:
        self.by_family = {name: Registry(name) for name in FAMILIES}

    def __getitem__(self, family: str) -> Registry:
        return self.by_family[family]

    def load_builtins(self) -> None:
        """Declare the built-ins listed in ``gaitrun.plugins.<family>.PLUGINS``."""
        for family in FAMILIES:
            package = f"gaitrun.plugins.{family}"
            for name, module_name in importlib.import_module(package).PLUGINS.items():
                self.by_family[family].declare(name, partial(importlib.import_module, module_name, package))

    def load_entry_points(self) -> None:
        """Declare the plugins other installed packages register (group ``gaitrun.plugins``)."""
        from importlib.metadata import EntryPoint

        for name, value, dist in installed_entry_points():
            origin = f"entry point '{name}' of {dist}"
            family, _, plugin = name.partition(".")
            if family not in FAMILIES or not plugin:
                raise PluginError(
                    f"{origin}: its name must be '<family>.<plugin>' with family one of "
                    f"{', '.join(FAMILIES)}", family=family or None, plugin=plugin or None)
            ep = EntryPoint(name=name, value=value, group=ENTRY_POINT_GROUP)
            self.by_family[family].declare(plugin, ep.load, origin=origin)


def installed_entry_points() -> list[tuple[str, str, str]]:
    """(name, value, distribution) of every ``gaitrun.plugins`` entry point.

    Scanning every installed distribution's metadata takes ~70 ms, a large share of
    ``gaitrun validate``; the result is cached per interpreter, keyed by the modification
    times of the ``sys.path`` folders (installing or removing a package changes them).
    """
    import hashlib
    import json
    import os
    import sys

    from .cache import cache_root

    stamps = [(p, os.stat(p).st_mtime_ns if os.path.exists(p) else None) for p in sys.path]
    key = hashlib.sha256(repr((sys.executable, stamps)).encode()).hexdigest()[:16]
    cached = cache_root() / "entry-points" / f"{key}.json"
    try:
        return [tuple(row) for row in json.loads(cached.read_text())]
    except (OSError, ValueError):
        pass
    from importlib.metadata import entry_points

    found = sorted((ep.name, ep.value, ep.dist.name if ep.dist else "?")
                   for ep in entry_points(group=ENTRY_POINT_GROUP))
    try:
        from .atomic import write_json

        write_json(cached, found)
    except Exception:  # noqa: BLE001 - a read-only home only costs the next start-up the scan
        pass
    return found


_DEFAULT: Registries | None = None


def registries() -> Registries:
    """The process-wide registries: built-ins plus installed entry points."""
    global _DEFAULT
    if _DEFAULT is None:
        regs = Registries()
        regs.load_builtins()
        regs.load_entry_points()
        _DEFAULT = regs
    return _DEFAULT
