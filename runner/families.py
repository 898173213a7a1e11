"""The plugin contract, in one table: a row per family.

Each row says where the family sits in a recipe (section, selector key, flat or ``params:``,
default plugin), what a plugin module must provide (a ``typing.Protocol``: functions with
their signatures and declarations) and what it may provide (optional hooks and declarations).
The registry's checks, the recipe model's sections, the cross-section checks' input sources,
the JSON Schema and the README's plugin table are all generated from ``FAMILIES``.

Nothing here imports TensorFlow: annotations are strings.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from pydantic import BaseModel

if TYPE_CHECKING:
    from collections.abc import Sequence
    from pathlib import Path
    from types import ModuleType

    import keras
    import numpy as np
    import tensorflow as tf

    from .data.records import Sample
    from .export import ExportContext
    from .folds import Fold

MODALITIES = ("silhouette", "optical_flow", "rgb", "inertial")
SAMPLE_KINDS = ("sequence", "image", "inertial")
INPUT_KINDS = ("image", "stack2d", "clip3d", "frame_set", "sequence", "inertial")
PRECISIONS = ("fp32", "fp16", "int8")

# architecture input kind -> the (dataset KIND, modality) pairs that can feed it
INPUT_SOURCES: dict[str, frozenset[tuple[str, str]]] = {
    "image": frozenset({("image", "rgb"), ("sequence", "silhouette")}),  # silhouettes: a gait energy image
    "stack2d": frozenset({("sequence", "optical_flow")}),  # x/y flow pairs per frame, as Embedded-Gait
    "clip3d": frozenset(("sequence", m) for m in ("silhouette", "optical_flow", "rgb")),
    "sequence": frozenset(("sequence", m) for m in ("silhouette", "optical_flow", "rgb")),
    "frame_set": frozenset({("sequence", "silhouette")}),
    "inertial": frozenset({("inertial", "inertial")}),
}


# input kind -> the shape of one model input (a window of T time steps, C channels)
INPUT_SHAPES: dict[str, str] = {
    "image": "(H, W, C): a still image, or the window's temporal mean (silhouettes: gait energy image)",
    "stack2d": "(H, W, 2T): optical flow, x/y interleaved per frame",
    "clip3d": "(T, H, W, C)", "frame_set": "(T, H, W, C), order-free", "sequence": "(T, H, W, C)",
    "inertial": "(T, C)",
}

# modality -> what a dataset's ``load(sample, params)`` returns for it (preprocessing follows)
RAW_SAMPLES: dict[str, str] = {
    "silhouette": "(T, H, W) uint8 0/255 masks, or one (H, W) mask",
    "rgb": "(T, H, W, 3) uint8 frames, or one (H, W, 3) uint8 image",
    "optical_flow": "(T, H, W) or (T, H, W, 3) uint8 frames (flow is computed), or (T, H, W, 2) "
                    "float flow in pixels",
    "inertial": "(T, C) float sensor window",
}


# --- the protocols: what a plugin module provides, per family -------------------------------
# A plugin is a module, so ``self`` below stands for the module and is not part of the contract.

@dataclass(frozen=True)
class HeadPhase:
    """An architecture's answer to ``head_phase(params)``: train ``epochs`` epochs as built (e.g.
    a frozen backbone), then call ``unfreeze(model)`` and train the rest at ``lr_factor`` times
    the learning rate."""

    epochs: int
    lr_factor: float
    unfreeze: Callable[[keras.Model], None]


class Dataset(Protocol):
    MODALITIES: frozenset[str]
    KIND: str
    Params: type[BaseModel]

    def scan(self, params: BaseModel, *, cache_dir: Path, seed: int) -> list[Sample]: ...
    def load(self, sample: Sample, params: BaseModel) -> np.ndarray: ...


class Architecture(Protocol):
    INPUT_KIND: str
    LOGITS: str | None
    EMBEDDING: str | None
    Params: type[BaseModel]

    def build(self, *, input_shape: tuple[int, ...], num_classes: int, params: BaseModel) -> keras.Model: ...
    def head_phase(self, params: BaseModel) -> HeadPhase | None: ...  # optional


class Augmentation(Protocol):
    MODALITIES: frozenset[str]
    LAYOUTS: frozenset[str]  # optional
    Params: type[BaseModel]

    def apply(self, x: tf.Tensor, *, params: BaseModel, seed: tf.Tensor, layout: str) -> tf.Tensor: ...


class CvScheme(Protocol):
    Params: type[BaseModel]

    def split(self, samples: Sequence[Sample], *, params: BaseModel, seed: int) -> list[Fold]: ...


class Pruner(Protocol):
    Params: type[BaseModel]

    def prune(self, model: keras.Model, *, params: BaseModel, protected: frozenset[str]) -> tuple[keras.Model, dict]: ...


class Exporter(Protocol):
    PRECISIONS: frozenset[str]
    Params: type[BaseModel]

    def export(self, model: keras.Model, *, params: BaseModel, ctx: ExportContext) -> dict[str, object]: ...

    def runtime(self, path: Path, *, threads: int = 0) -> Callable[[np.ndarray], np.ndarray]: ...  # optional


# --- declaration checks -----------------------------------------------------------------------

Check = Callable[[object], "str | None"]


def subset_of(allowed: tuple[str, ...]) -> Check:
    def check(value: object) -> str | None:
        if not isinstance(value, (set, frozenset, tuple, list)) or not value:
            return f"must be a non-empty set drawn from {list(allowed)}"
        bad = sorted(set(value) - set(allowed))
        return f"has unknown entries {bad}; allowed: {list(allowed)}" if bad else None

    return check


def one_of(allowed: tuple[str, ...]) -> Check:
    return lambda v: None if v in allowed else f"must be one of {list(allowed)}, got {v!r}"


def layer_name(value: object) -> str | None:
    ok = value is None or (isinstance(value, str) and value.isidentifier())
    return None if ok else f"must be a layer name or None, got {value!r}"


# --- the table --------------------------------------------------------------------------------

@dataclass(frozen=True)
class Family:
    """One plugin family: its place in a recipe and its contract."""

    name: str
    section: str  # recipe section
    selector: str  # the key that names the plugin ("" for augment: a list of one-key mappings)
    flat: bool  # plugin keys beside the selector (cv, prune, deploy) or under ``params:``
    default: str | None  # plugin used when the section omits the selector
    protocol: type
    base: str  # the section's core model, "module:Class" under gaitrun.recipe.sections, or ""
    declarations: dict[str, Check] = field(default_factory=dict)
    optional: tuple[str, ...] = ()  # hooks and declarations a plugin may leave out
    doc: str = ""

    @property
    def functions(self) -> dict[str, inspect.Signature]:
        """Function name -> the signature the core calls it with (``self`` dropped)."""
        out = {}
        for name, fn in vars(self.protocol).items():
            if inspect.isfunction(fn) and not name.startswith("_"):
                sig = inspect.signature(fn)
                out[name] = sig.replace(parameters=list(sig.parameters.values())[1:])
        return out

    @property
    def required_functions(self) -> dict[str, inspect.Signature]:
        return {n: s for n, s in self.functions.items() if n not in self.optional}

    def core_fields(self) -> set[str]:
        """Recipe keys the core owns in this section (a flat plugin may not reuse them)."""
        if not self.base:
            return set()
        import importlib

        cls = getattr(importlib.import_module("gaitrun.recipe.sections"), self.base)
        return set(cls.model_fields) | {self.selector}


FAMILIES: dict[str, Family] = {f.name: f for f in (
    Family("datasets", "data", "adapter", False, "synthetic_gait", Dataset, "DataBase",
           {"MODALITIES": subset_of(MODALITIES), "KIND": one_of(SAMPLE_KINDS)},
           doc="`scan` lists `Sample`s; `load` returns one raw array (see the table below)"),
    Family("architectures", "model", "arch", False, None, Architecture, "",
           {"INPUT_KIND": one_of(INPUT_KINDS), "LOGITS": layer_name, "EMBEDDING": layer_name},
           optional=("head_phase",),
           doc="`LOGITS`/`EMBEDDING`: names of the softmax and embedding layers (None if the "
               "model has none); `head_phase` gives a frozen-head phase (`HeadPhase`)"),
    Family("augmentations", "augment", "", False, None, Augmentation, "",
           {"MODALITIES": subset_of(MODALITIES), "LAYOUTS": subset_of(INPUT_KINDS)},
           optional=("LAYOUTS",), doc="stateless random ops; optional `LAYOUTS`: input kinds it can transform"),
    Family("cv", "cv", "scheme", True, "holdout", CvScheme, "CvBase",
           doc="`Fold`s of indices into `samples`; `metadata` gives groups, `check_disjoint` checks them"),
    Family("pruners", "prune", "method", True, "l1_percentile", Pruner, "PruneBase",
           doc="`protected`: layers never to prune (the architecture's embedding); returns the "
               "smaller model and its report, a JSON-able dict with a one-line `summary`"),
    Family("exporters", "deploy", "target", True, None, Exporter, "DeployBase",
           {"PRECISIONS": subset_of(PRECISIONS)}, optional=("runtime",),
           doc="`ctx`: `ExportContext` (precision, batch sizes, calibration windows, out_dir); optional "
               "`runtime(path, *, threads)`: how its artefact runs here (`run(x) -> outputs`), for "
               "parity and bench"),
)}

SECTIONS: dict[str, Family] = {f.section: f for f in FAMILIES.values()}


# --- checking a module against its family --------------------------------------------------

def signature_text(sig: inspect.Signature, *, returns: bool = False) -> str:
    """``(*, input_shape: tuple[int, ...], ...)`` (annotations unquoted)."""
    shown = sig if returns else sig.replace(return_annotation=inspect.Signature.empty)
    return str(shown).replace("'", "")




def signature_problems(name: str, spec: inspect.Signature, impl: Callable[..., object]) -> list[str]:
    """What keeps ``impl`` from being called as ``spec`` is (pluggy's ``_verify_hook``)."""
    try:
        got = inspect.signature(impl)
    except (TypeError, ValueError):
        return []  # a builtin without a signature: cannot tell
    params = got.parameters
    var_kw = any(p.kind is p.VAR_KEYWORD for p in params.values())
    var_pos = any(p.kind is p.VAR_POSITIONAL for p in params.values())
    positional = [p for p in params.values() if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    wrong: list[str] = []
    spec_pos = [p for p in spec.parameters.values() if p.kind is not p.KEYWORD_ONLY]
    for i, p in enumerate(spec_pos):
        if i >= len(positional) and not var_pos:
            wrong.append(f"positional argument '{p.name}' missing")
        elif i < len(positional) and positional[i].name != p.name:
            wrong.append(f"argument {i + 1} is '{positional[i].name}', not '{p.name}'")
    for p in spec.parameters.values():
        if p.kind is not p.KEYWORD_ONLY:
            continue
        if p.name not in params:
            if not var_kw:
                wrong.append(f"keyword argument '{p.name}' missing")
        elif params[p.name].kind is p.POSITIONAL_ONLY:
            wrong.append(f"'{p.name}' must be accepted by keyword")
    for p in list(params.values())[len(spec_pos):]:
        extra = p.name not in spec.parameters and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)
        if extra and p.default is p.empty:
            wrong.append(f"'{p.name}' is required but the core never passes it")
    return [f"'{name}{signature_text(spec)}' ({'; '.join(wrong)})"] if wrong else []


def contract_problems(family: Family, module: object) -> list[str]:
    """Everything that keeps ``module`` from being a plugin of ``family``, all at once."""
    from types import ModuleType

    if not isinstance(module, ModuleType):
        return [f"is a {type(module).__name__}, not a module"]
    problems = _params_problems(family, getattr(module, "Params", None))
    for fn_name, spec in family.functions.items():
        impl = getattr(module, fn_name, None)
        if impl is None and fn_name in family.optional:
            continue
        if not callable(impl):
            problems.append(f"a function '{fn_name}{signature_text(spec)}'")
        else:
            problems += signature_problems(fn_name, spec, impl)
    for attr, check in family.declarations.items():
        if not hasattr(module, attr):
            if attr not in family.optional:
                problems.append(f"the declaration '{attr}'")
        elif (why := check(getattr(module, attr))) is not None:
            problems.append(f"a valid '{attr}' ({attr} {why})")
    if not (module.__doc__ or "").strip():
        problems.append("a module docstring (its first line is the description)")
    return problems


def _params_problems(family: Family, params: object) -> list[str]:
    if not (inspect.isclass(params) and issubclass(params, BaseModel)):
        return ["'Params' (a pydantic BaseModel subclass)"]
    out = []
    if params.model_config.get("extra") != "forbid":
        out.append("model_config extra='forbid' on 'Params'")
    if family.flat:
        clash = sorted(set(params.model_fields) & family.core_fields())
        if clash:
            out.append(f"'Params' fields that do not clash with the core's '{family.section}' keys "
                       f"(rename {', '.join(repr(c) for c in clash)})")
    return out


def declared_hook(module: ModuleType, family: Family, name: str) -> Callable[..., object] | None:
    """An optional hook of ``family`` that ``module`` provides, or None (never ``hasattr`` guessing)."""
    if name not in family.optional:
        raise KeyError(f"'{name}' is not an optional hook of {family.name}")
    return getattr(module, name, None)
