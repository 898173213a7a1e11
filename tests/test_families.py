"""The family table: signature checks at registration (as pluggy's ``_verify_hook``), clashes
with core keys, optional hooks, and the tables generated from it."""

from __future__ import annotations

from types import SimpleNamespace

from conftest import plugin_module
from pydantic import BaseModel, ConfigDict

from gaitrun.families import FAMILIES, INPUT_SOURCES, SECTIONS, contract_problems


class Params(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    size: int = 3


ARCH = {"Params": Params, "INPUT_KIND": "image", "LOGITS": "logits", "EMBEDDING": None}


def test_wrong_signatures_are_refused_all_at_once():
    def build(input_shape, classes, *, params, extra):  # positional, misnamed, a required extra
        return None

    problems = contract_problems(FAMILIES["architectures"], plugin_module(build=build, **ARCH))
    (line,) = problems
    assert line.startswith("'build(*, input_shape: tuple[int, ...], num_classes: int, params: BaseModel)'")
    assert "keyword argument 'num_classes' missing" in line
    assert "'extra' is required but the core never passes it" in line


def test_positional_names_must_match_the_spec():
    def load(path, params):
        return None

    def scan(params, *, cache_dir, seed):
        return []

    problems = contract_problems(FAMILIES["datasets"], plugin_module(
        Params=Params, scan=scan, load=load, MODALITIES={"rgb"}, KIND="image"))
    assert problems == ["'load(sample: Sample, params: BaseModel)' (argument 1 is 'path', not 'sample')"]


def test_keyword_extras_with_defaults_and_kwargs_are_accepted():
    def build(*, input_shape, num_classes, params, debug=False):
        return None

    def apply(x, **kwargs):
        return x

    assert contract_problems(FAMILIES["architectures"], plugin_module(build=build, **ARCH)) == []
    assert contract_problems(FAMILIES["augmentations"], plugin_module(
        Params=Params, apply=apply, MODALITIES={"rgb"})) == []


def test_an_optional_hook_is_checked_when_present():
    def build(*, input_shape, num_classes, params):
        return None

    def head_phase(config):
        return None

    problems = contract_problems(FAMILIES["architectures"], plugin_module(build=build, head_phase=head_phase, **ARCH))
    assert problems == ["'head_phase(params: BaseModel)' (argument 1 is 'config', not 'params')"]


def test_a_flat_plugin_field_named_like_a_core_field_is_refused():
    class Clashing(BaseModel):
        model_config = ConfigDict(extra="forbid", frozen=True)
        precision: str = "fp32"
        target: str = "x"
        opset: int = 17

    def export(model, *, params, ctx):
        return {}

    problems = contract_problems(FAMILIES["exporters"], plugin_module(Params=Clashing, export=export,
                                                                   PRECISIONS={"fp32"}))
    assert problems == ["'Params' fields that do not clash with the core's 'deploy' keys "
                        "(rename 'precision', 'target')"]


def test_every_builtin_fits_and_the_generated_tables_agree():
    from gaitrun.recipe.model import build_recipe_model, everything
    from gaitrun.registry import Registries

    regs = Registries()
    regs.load_builtins()
    for family in FAMILIES:
        assert [e for e in regs[family].entries() if not hasattr(e, "module")] == []
    recipe = build_recipe_model(regs, everything(regs))
    assert set(SECTIONS) <= set(recipe.model_fields)
    kinds = {p.declared("INPUT_KIND") for p in regs["architectures"]}
    assert kinds <= set(INPUT_SOURCES)


def test_a_third_party_pruner_gets_its_own_keys_and_the_protected_layers_and_reports(tmp_path):
    """The core reads no pruner field (no ``percentile``): a pruner with other keys validates,
    receives exactly its own ``Params`` and the architecture's embedding as ``protected``, and its
    returned report (with its one-line ``summary``) is what the core records."""
    import pytest
    from conftest import BASE_RECIPE

    from gaitrun.errors import StageError
    from gaitrun.outputs import Outputs
    from gaitrun.recipe.load import load_recipe
    from gaitrun.registry import Registries
    from gaitrun.stages.prune import _prune

    class Keep(BaseModel):
        model_config = ConfigDict(extra="forbid", frozen=True)
        ratio: float = 0.5

    calls = []

    def prune(model, *, params, protected):
        calls.append((params, protected))
        return model, {"summary": f"kept {params.ratio:.0%}"} if params.ratio < 1 else {}

    regs = Registries()
    regs.load_builtins()
    regs["pruners"].add("keep_share", plugin_module(Params=Keep, prune=prune))
    (tmp_path / "r.yaml").write_text(BASE_RECIPE + "prune: {method: keep_share, ratio: 0.25, finetune: {epochs: 0}}\n")
    recipe = load_recipe(tmp_path / "r.yaml", regs=regs).recipe
    ctx = SimpleNamespace(recipe=recipe, regs=regs)
    model = object()  # the pruner's business: the core passes it through
    assert _prune(ctx, model, Outputs("probs", "embedding")) == (model, {"summary": "kept 25%"})
    assert calls == [(Keep(ratio=0.25), frozenset({"embedding"}))]

    ctx.recipe = load_recipe(tmp_path / "r.yaml", ["prune.ratio=1.0"], regs=regs).recipe
    with pytest.raises(StageError, match="pruner 'keep_share' must return .* report\\['summary'\\]"):
        _prune(ctx, model, Outputs("probs", None))
