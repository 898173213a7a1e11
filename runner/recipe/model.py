"""The Recipe model, built from the registries so each plugin's ``params`` are validated
by that plugin's own ``Params`` model, chosen by the plugin name (a tagged union).

Two shapes of plugin section:

* nested -- ``data: {adapter: casia_b, params: {...}, modality: ...}`` and
  ``model: {arch: cnn3d, params: {...}}``: the plugin is one part of the section;
* flat -- ``cv: {scheme: group_kfold, folds: 5}``, ``prune: {method: l1_percentile,
  percentile: 40}``, ``deploy: {target: onnx, precision: int8}``: the whole section
  configures one plugin, so its keys sit beside the selector.

``augment`` is a list of one-key mappings: ``[{flip: {p: 0.5}}, {shift: {max_px: 4}}]``.
Which section is which (selector, flat or not, default) is the family table,
``gaitrun.families.SECTIONS``.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, Discriminator, Field, Tag, ValidationError, create_model

from ..families import SECTIONS, Family
from ..registry import Registries, Registry
from ..yamlio import KeyPath
from .search import Search
from .sections import Evaluate, Strict, Train

NO_PLUGIN = "<none>"  # the tag of the member standing in for a section that names no usable plugin


class _ModelBase(Strict):
    pass


def _default_params(params: type[BaseModel]) -> Any:
    try:
        params()
    except ValidationError:
        return ...  # the plugin has required params: the recipe must give them
    return Field(default_factory=params)


def _member(fam: Family, base: type[BaseModel], reg: Registry, name: str) -> type[BaseModel]:
    plugin = reg.get(name)
    cls_name = f"{fam.section.capitalize()}_{name}"
    sel = (Literal[name], Field(name if fam.default == name else ..., description=plugin.description))
    if fam.flat:
        return create_model(cls_name, __base__=(base, plugin.params), **{fam.selector: sel})
    return create_model(cls_name, __base__=base, **{fam.selector: sel},
                        params=(plugin.params, _default_params(plugin.params)))


def _selector_of(fam: Family):
    def pick(value: Any) -> Any:
        if isinstance(value, dict):
            return value.get(fam.selector, fam.default)
        return getattr(value, fam.selector, None)

    return pick


def _tagged_union(members: dict[str, type[BaseModel]], pick) -> Any:
    if not members:  # nothing usable is named: a member no value selects, so any name is "unknown"
        members = {NO_PLUGIN: create_model("NoPlugin", __base__=Strict)}
    options = tuple(Annotated[cls, Tag(name)] for name, cls in members.items())
    return Annotated[Union[options], Discriminator(pick)]  # noqa: UP007


Selection = tuple  # ((section, (plugin names...)), ...): the plugins a model is built for


def _section_type(section: str, regs: Registries, names: tuple[str, ...]) -> Any:
    """The tagged union of a section's plugins, on the core model the family table names."""
    from . import sections

    fam = SECTIONS[section]
    base = getattr(sections, fam.base) if fam.base else _ModelBase
    members = {name: _member(fam, base, regs[fam.name], name) for name in names}
    return _tagged_union(members, _selector_of(fam))


def _default_section(section: str) -> dict[str, str]:
    """A section left out that selects the family's default plugin (``cv: {scheme: holdout}``)."""
    fam = SECTIONS[section]
    return {fam.selector: fam.default}


def _augment_item_type(reg: Registry, names: tuple[str, ...]) -> Any:
    members = {}
    for name in names:
        params = reg.get(name).params
        members[name] = create_model(f"Augment_{name}", __base__=Strict,
                                     **{name: (params, _default_params(params))})

    def pick(value: Any) -> Any:
        if isinstance(value, dict) and len(value) == 1:
            return next(iter(value))
        if isinstance(value, BaseModel):
            return next(iter(type(value).model_fields))
        return None

    return _tagged_union(members, pick)


def named_plugins(data: Any, section: str) -> list[tuple[KeyPath, str]]:
    """(key path of the name, plugin name) for each plugin a section of the raw document names."""
    fam = SECTIONS[section]
    value = data.get(section) if isinstance(data, dict) else None
    if section == "augment":
        found = [((section, i, next(iter(v))), next(iter(v))) for i, v in enumerate(value)
                 if isinstance(v, dict) and len(v) == 1] if isinstance(value, list) else []
    elif isinstance(value, dict):
        found = [((section, fam.selector), value.get(fam.selector, fam.default))]
    else:
        found = []
    return [(path, name) for path, name in found if isinstance(name, str)]


def broken_named(data: Any, regs: Registries) -> list[tuple[KeyPath, str]]:
    """(key path, why) for each plugin the document names that is installed but broken."""
    out = []
    for section, fam in SECTIONS.items():
        reg = regs[fam.name]
        for path, name in named_plugins(data, section):
            if name in reg and not reg.usable(name):
                out.append((path, reg.broken_reason(name)))
    return out


def selection(data: Any, regs: Registries) -> Selection:
    """The usable plugins a recipe document names, per section (the section's default when it
    names none). Building the model for just these keeps validation from importing every
    plugin; unknown names still fail, since they match no member of the union."""
    out = []
    for section, fam in SECTIONS.items():
        reg = regs[fam.name]
        names = {n for _, n in named_plugins(data, section) if reg.usable(n)}
        if not names and fam.default is not None and reg.usable(fam.default):
            names = {fam.default}
        out.append((section, tuple(sorted(names))))
    return tuple(out)


def everything(regs: Registries) -> Selection:
    """Every usable registered plugin (for the JSON Schema)."""
    return tuple((s, tuple(p.name for p in regs[f.name])) for s, f in SECTIONS.items())


def build_recipe_model(regs: Registries, sel: Selection) -> type[BaseModel]:
    """Create the ``Recipe`` model class for the plugins in ``sel``."""
    names = dict(sel)
    return create_model(
        "Recipe",
        __base__=Strict,
        name=(str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$",
                         description="names the run folder artifacts/<name>/")),
        seed=(int, Field(0, ge=0, le=2**31 - 1)),
        data=(_section_type("data", regs, names["data"]), ...),
        augment=(list[_augment_item_type(regs["augmentations"], names["augment"])], Field(default_factory=list)),
        model=(_section_type("model", regs, names["model"]), ...),
        train=(Train, Field(default_factory=Train)),
        cv=(_section_type("cv", regs, names["cv"]),
            Field(default_factory=lambda: _default_section("cv"), validate_default=True)),
        evaluate=(Evaluate, Field(default_factory=Evaluate)),
        prune=(_section_type("prune", regs, names["prune"]) | None, None),
        deploy=(_section_type("deploy", regs, names["deploy"]) | None, None),
        search=(Search | None, None),
    )


@lru_cache(maxsize=64)
def recipe_model_for(regs: Registries, sel: Selection) -> type[BaseModel]:
    return build_recipe_model(regs, sel)
