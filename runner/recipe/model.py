"""The Recipe model, built from the registries so each plugin's ``params`` are validated
by that plugin's own ``Params`` model, chosen by the plugin name (a tagged union).

Two shapes of plugin section:

* nested -- ``data: {adapter: casia_b, params: {...}, modality: ...}`` and
  ``model: {arch: cnn3d, params: {...}}``: the plugin is one part of the section;
* flat -- ``cv: {scheme: group_kfold, folds: 5}``, ``prune: {method: l1_percentile,
  percentile: 40}``, ``deploy: {target: onnx, precision: int8}``: the whole section
  configures one plugin, so its keys sit beside the selector.

``augment`` is a list of one-key mappings: ``[{flip: {p: 0.5}}, {shift: {max_px: 4}}]``.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, Discriminator, Field, Tag, ValidationError, create_model

from ..registry import Registries, Registry
from .search import Search
from .sections import CvBase, DataBase, DeployBase, Evaluate, PruneBase, Strict, Train

# section -> (family, selector key, flat?, default plugin)
SECTIONS: dict[str, tuple[str, str, bool, str | None]] = {
    "data": ("datasets", "adapter", False, "synthetic_gait"),
    "model": ("architectures", "arch", False, None),
    "augment": ("augmentations", "", False, None),
    "cv": ("cv", "scheme", True, "holdout"),
    "prune": ("pruners", "method", True, "l1_percentile"),
    "deploy": ("exporters", "target", True, None),
}


class _ModelBase(Strict):
    pass


def _default_params(params: type[BaseModel]) -> Any:
    try:
        params()
    except ValidationError:
        return ...  # the plugin has required params: the recipe must give them
    return Field(default_factory=params)


def _member(section: str, base: type[BaseModel], reg: Registry, name: str) -> type[BaseModel]:
    family, selector, flat, _ = SECTIONS[section]
    plugin = reg.get(name)
    cls_name = f"{section.capitalize()}_{name}"
    sel = (Literal[name], Field(name if SECTIONS[section][3] == name else ..., description=plugin.description))
    if flat:
        return create_model(cls_name, __base__=(base, plugin.params), **{selector: sel})
    return create_model(cls_name, __base__=base, **{selector: sel},
                        params=(plugin.params, _default_params(plugin.params)))


def _selector_of(section: str):
    _, selector, _, default = SECTIONS[section]

    def pick(value: Any) -> Any:
        if isinstance(value, dict):
            return value.get(selector, default)
        return getattr(value, selector, None)

    return pick


def _tagged_union(members: dict[str, type[BaseModel]], pick) -> Any:
    options = tuple(Annotated[cls, Tag(name)] for name, cls in members.items())
    return Annotated[Union[options], Discriminator(pick)]  # noqa: UP007


def _section_type(section: str, base: type[BaseModel], reg: Registry) -> Any:
    members = {name: _member(section, base, reg, name) for name in reg.names()}
    return _tagged_union(members, _selector_of(section))


def _augment_item_type(reg: Registry) -> Any:
    members = {}
    for name in reg.names():
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


def build_recipe_model(regs: Registries) -> type[BaseModel]:
    """Create the ``Recipe`` model class for the plugins currently registered."""
    return create_model(
        "Recipe",
        __base__=Strict,
        name=(str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$",
                         description="names the run folder artifacts/<name>/")),
        seed=(int, Field(0, ge=0, le=2**31 - 1)),
        data=(_section_type("data", DataBase, regs["datasets"]), ...),
        augment=(list[_augment_item_type(regs["augmentations"])], Field(default_factory=list)),
        model=(_section_type("model", _ModelBase, regs["architectures"]), ...),
        train=(Train, Field(default_factory=Train)),
        cv=(_section_type("cv", CvBase, regs["cv"]), Field(default_factory=lambda: {"scheme": "holdout"})),
        evaluate=(Evaluate, Field(default_factory=Evaluate)),
        prune=(_section_type("prune", PruneBase, regs["pruners"]) | None, None),
        deploy=(_section_type("deploy", DeployBase, regs["exporters"]) | None, None),
        search=(Search | None, None),
    )


@lru_cache(maxsize=4)
def recipe_model_for(regs: Registries) -> type[BaseModel]:
    return build_recipe_model(regs)
