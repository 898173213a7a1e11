"""Plugin registries: one per family, a plain mapping from short name to plugin.

A plugin is a Python module that is cheap to import (no TensorFlow at module level); what it
must provide per family -- functions with their signatures, declarations, optional hooks --
is the table ``gaitrun.families.FAMILIES`` (also rendered in the README). A module that does
not fit is refused when it is registered, with everything it lacks; a plugin that fails to
import or register is kept as ``Broken`` with the reason, so listings show it and only recipes
that name it fail.

Built-ins are listed in ``gaitrun.plugins.<family>.PLUGINS`` (name -> module, imported
when the registry is first used); other installed packages add
plugins through the entry-point group ``gaitrun.plugins``: the entry-point name is
``<family>.<plugin name>`` and its value the plugin module, e.g.::

    [project.entry-points."gaitrun.plugins"]
    "architectures.tiny_mlp" = "my_package.tiny_mlp"
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from types import ModuleType
from typing import Any

from pydantic import BaseModel

from .errors import PluginError
from .families import (  # noqa: F401  (re-exported: the vocabularies plugins declare from)
    FAMILIES,
    INPUT_KINDS,
    MODALITIES,
    PRECISIONS,
    SAMPLE_KINDS,
    Family,
    contract_problems,
)
from .hints import did_you_mean

ENTRY_POINT_GROUP = "gaitrun.plugins"


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
        """A declaration of the family (``None`` for an optional one the plugin leaves out)."""
        return getattr(self.module, attr, None)

    def impl(self, attr: str) -> Callable[..., Any]:
        return getattr(self.module, attr)

    def own_params(self, section: BaseModel) -> BaseModel:
        """The plugin's own ``Params`` from its recipe section: ``params:`` of a nested section,
        the keys beside the selector of a flat one (never the core's keys)."""
        if not FAMILIES[self.family].flat:
            return section.params  # type: ignore[attr-defined]
        return self.params(**{key: getattr(section, key) for key in self.params.model_fields})

    def hook(self, attr: str) -> Callable[..., Any] | None:
        """An optional hook the family declares, or None when this plugin does not provide it."""
        from .families import declared_hook

        return declared_hook(self.module, FAMILIES[self.family], attr)


@dataclass(frozen=True)
class Broken:
    """A plugin that is declared but cannot be used: why, and where it comes from."""

    family: str
    name: str
    origin: str
    reason: str


class Registry:
    """The plugins of one family, by name.

    Plugins are *declared* cheaply (a name and how to import the module) and *registered* --
    imported and checked against the family -- the first time they are needed, so that
    validating a recipe imports only the plugins it names. ``gaitrun plugins`` registers all.
    """

    def __init__(self, family: str):
        self.spec: Family = FAMILIES[family]
        self._declared: dict[str, tuple[Callable[[], Any], str]] = {}
        self._plugins: dict[str, Plugin] = {}
        self._broken: dict[str, Broken] = {}

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
        problems = contract_problems(self.spec, module)
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
        """The plugin ``name``, imported and checked on first use. Raises ``PluginError`` for an
        unknown name (with the closest known one) or a broken plugin (with why); a broken plugin
        is remembered, so it is reported, never retried, and never hides the others."""
        if name in self._plugins:
            return self._plugins[name]
        if name in self._broken:
            raise PluginError(self._broken[name].reason, family=self.family, plugin=name)
        if name not in self._declared:
            raise PluginError(unknown_message(self.family, name, self.names()),
                              family=self.family, plugin=name)
        origin = self._declared[name][1]
        try:
            return self.add(name, self._import(name), origin=origin)
        except PluginError as exc:
            self._broken[name] = Broken(self.family, name, origin, str(exc))
            raise

    def _import(self, name: str) -> Any:
        loader, origin = self._declared[name]
        try:
            return loader()
        except Exception as exc:  # a broken plugin package must not end in a traceback
            raise PluginError(f"{self.family} plugin '{name}' ({origin}) failed to import: "
                              f"{type(exc).__name__}: {exc}", family=self.family, plugin=name) from exc

    def names(self) -> list[str]:
        return sorted(self._declared)

    def entries(self) -> Iterator[Plugin | Broken]:
        """Every declared plugin, registered, or ``Broken`` with its reason (for listings)."""
        for name in self.names():
            try:
                yield self.get(name)
            except PluginError:
                yield self._broken[name]

    def __iter__(self) -> Iterator[Plugin]:
        """The working plugins; broken ones are left out (``entries()`` shows them)."""
        return (e for e in self.entries() if isinstance(e, Plugin))

    def usable(self, name: str) -> bool:
        """Whether ``name`` is declared and registers without error."""
        try:
            self.get(name)
        except PluginError:
            return False
        return True

    def broken_reason(self, name: str) -> str:
        return self._broken[name].reason

    def __contains__(self, name: object) -> bool:
        return name in self._declared


def unknown_message(family: str, name: str, known: list[str]) -> str:
    """``unknown architectures plugin 'cnn3dd'; did you mean 'cnn3d'? known: ...``"""
    return f"unknown {family} plugin '{name}'{did_you_mean(str(name), known)} known: {', '.join(known)}"


class Registries:
    """All families' registries. ``registries()`` builds the default one once."""

    def __init__(self) -> None:
        self.by_family = {name: Registry(name) for name in FAMILIES}
        self.broken_entry_points: list[Broken] = []  # entry points no family can take

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
            ep = EntryPoint(name=name, value=value, group=ENTRY_POINT_GROUP)
            try:
                if family not in FAMILIES or not plugin:
                    raise PluginError(
                        f"{origin}: its name must be '<family>.<plugin>' with family one of "
                        f"{', '.join(FAMILIES)}{did_you_mean(family, list(FAMILIES))}")
                self.by_family[family].declare(plugin, ep.load, origin=origin)
            except PluginError as exc:  # one bad entry point must not hide the other plugins
                self.broken_entry_points.append(Broken(family or "?", plugin or name, origin, str(exc)))


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
