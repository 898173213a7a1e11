"""Invalid recipes give exact ``file:line:col: key.path: message`` lines, all at once, exit 2."""

from __future__ import annotations

import pytest
from conftest import BASE_RECIPE

from gaitrun.errors import RecipeError
from gaitrun.recipe import load_recipe


def _problems(tmp_path, text: str, overrides=()) -> list[str]:
    path = tmp_path / "recipe.yaml"
    path.write_text(text)
    with pytest.raises(RecipeError) as info:
        load_recipe(path, list(overrides))
    return [str(p).replace(str(tmp_path) + "/", "") for p in info.value.problems]


def _replace(old: str, new: str) -> str:
    assert old in BASE_RECIPE, old
    return BASE_RECIPE.replace(old, new, 1)


# (mutation of the base recipe, the exact expected error line)
CASES = [
    # typos at each depth
    (("name: digits_test", "nmae: digits_test"), "recipe.yaml:1:1: nmae: unknown key 'nmae'; did you mean 'name'?"),
    (("  modality: rgb", "  modalty: rgb"), "recipe.yaml:6:3: data.modalty: unknown key 'modalty'; did you mean 'modality'?"),
    (("{frames: 1, size", "{frams: 1, size"), "recipe.yaml:7:10: data.clip.frams: unknown key 'frams'; did you mean 'frames'?"),
    (("{n_class: 10}", "{n_clas: 10}"), "recipe.yaml:5:12: data.params.n_clas: unknown key 'n_clas'; did you mean 'n_class'?"),
    (("{width: 0.25}", "{widht: 0.25}"), "recipe.yaml:12:12: model.params.widht: unknown key 'widht'; did you mean 'width'?"),
    (("{name: adam, lr", "{nam: adam, lr"), "recipe.yaml:14:15: train.optimizer.nam: unknown key 'nam'; did you mean 'name'?"),
    (("  optimizer:", "  optimiser:"), "recipe.yaml:14:3: train.optimiser: unknown key 'optimiser'; did you mean 'optimizer'?"),
    (("shift: {max_px: 1}", "shift: {max_pix: 1}"), "recipe.yaml:9:13: augment.0.shift.max_pix: unknown key 'max_pix'; did you mean 'max_px'?"),
    # a misspelt selector is an unknown key too, not an augmentation-shaped complaint
    (("  arch: simple_cnn", "  arhc: simple_cnn"), "recipe.yaml:11:3: model.arhc: unknown key 'arhc'; did you mean 'arch'?"),
    (("  arch: simple_cnn", "  kind: simple_cnn"), "recipe.yaml:10:1: model.arch: missing required key 'arch'"),
    (("folds: 3}", "fold: 3}"), "recipe.yaml:17:32: cv.fold: unknown key 'fold'; did you mean 'folds'?"),
    # unknown plugins
    (("arch: simple_cnn", "arch: simple_cn"), "recipe.yaml:11:9: model.arch: unknown architectures plugin 'simple_cn'; did you mean 'simple_cnn'?"),
    (("adapter: digits", "adapter: digit"), "recipe.yaml:4:12: data.adapter: unknown datasets plugin 'digit'; did you mean 'digits'?"),
    (("- shift:", "- shfit:"), "recipe.yaml:9:5: augment.0.shfit: unknown augmentations plugin 'shfit'; did you mean 'shift'?"),
    (("scheme: stratified_kfold", "scheme: stratifed_kfold"), "recipe.yaml:17:14: cv.scheme: unknown cv plugin 'stratifed_kfold'; did you mean 'stratified_kfold'?"),
    # wrong types
    (("epochs: 2", "epochs: two"), "recipe.yaml:16:11: train.epochs: Input should be a valid integer, unable to parse string as an integer (got 'two')"),
    (("seed: 7", "seed: [7]"), "recipe.yaml:2:7: seed: Input should be a valid integer"),
    (("lr: 0.001}", "lr: fast}"), "recipe.yaml:14:31: train.optimizer.lr: Input should be a valid number, unable to parse string as a number (got 'fast')"),
    (("size: [8, 8]", "size: 8"), "recipe.yaml:7:27: data.clip.size: Input should be a valid tuple (got 8)"),
    (("metrics: [accuracy, f1_macro]", "metrics: accuracy"), "recipe.yaml:19:12: evaluate.metrics: Input should be a valid list (got 'accuracy')"),
    # out-of-range and bad enum values
    (("epochs: 2", "epochs: 0"), "recipe.yaml:16:11: train.epochs: Input should be greater than or equal to 1 (got 0)"),
    (("batch_size: 32", "batch_size: -4"), "recipe.yaml:15:15: train.batch_size: Input should be greater than or equal to 1 (got -4)"),
    (("{n_class: 10}", "{n_class: 11}"), "recipe.yaml:5:21: data.params.n_class: Input should be less than or equal to 10 (got 11)"),
    (("modality: rgb", "modality: thermal"), "recipe.yaml:6:13: data.modality: Input should be 'silhouette', 'optical_flow', 'rgb' or 'inertial' (got 'thermal')"),
    (("name: digits_test", "name: ../escape"), "recipe.yaml:1:7: name: String should match pattern '^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$' (got '../escape')"),
    # missing required sections
    (("model:\n  arch: simple_cnn\n  params: {width: 0.25}\n", ""), "recipe.yaml:1:1: model: missing required key 'model'"),
    # cross-section checks
    (("modality: rgb", "modality: inertial"), ["recipe.yaml:6:13: data.modality: dataset 'digits' provides rgb, not 'inertial'",
                                               "recipe.yaml:9:5: augment.0.shift: augmentation 'shift' does not apply to inertial data (it supports optical_flow, rgb, silhouette)"]),
    (("arch: simple_cnn", "arch: har_lstm"), ["recipe.yaml:9:5: augment.0.shift: augmentation 'shift' does not work on the inertial input of 'har_lstm'",
                                              "recipe.yaml:11:9: model.arch: architecture 'har_lstm' takes inertial input, which rgb images from 'digits' cannot feed (it needs: inertial inertials)"]),
    (("epochs: 2", "epochs: 2\n  validate_every: 2\n  schedule: {name: reduce_on_plateau}"),
     "recipe.yaml:17:19: train.validate_every: schedule 'reduce_on_plateau' reads the validation loss every epoch; "
     "use validate_every: 1, or a cosine or step schedule"),
    (("epochs: 2", "epochs: 2\n  validate_every: 3\n  early_stopping: {monitor: val_accuracy}"),
     "recipe.yaml:17:19: train.validate_every: early stopping reads 'val_accuracy' every epoch; use validate_every: 1"),
    (("- shift: {max_px: 1}", "- flow_threshold: {}"), "recipe.yaml:9:5: augment.0.flow_threshold: augmentation 'flow_threshold' does not apply to rgb data (it supports optical_flow)"),
]


@pytest.mark.parametrize(("mutation", "expected"), CASES, ids=[str(c[1]).split(": ")[1] + f"-{i}" for i, c in enumerate(CASES)])
def test_invalid_recipe_points_at_line(tmp_path, mutation, expected):
    problems = _problems(tmp_path, _replace(*mutation))
    expected = expected if isinstance(expected, list) else [expected]
    assert len(problems) == len(expected)
    for got, want in zip(problems, expected, strict=False):
        assert got.startswith(want), got  # unknown plugins go on to list the known ones


def test_all_errors_reported_at_once(tmp_path):
    text = _replace("epochs: 2", "epochs: 0").replace("modality: rgb", "modalty: rgb").replace("arch: simple_cnn", "arch: nope")
    problems = _problems(tmp_path, text)
    assert [p.split(":")[1] for p in problems] == ["6", "11", "16"]


def test_yaml_syntax_error(tmp_path):
    assert _problems(tmp_path, BASE_RECIPE + "oops: [1, 2\n") == [
        "recipe.yaml:21:1: YAML syntax error: while parsing a flow sequence expected ',' or ']', but got '<stream end>'"]


def test_python_tag(tmp_path):
    assert _problems(tmp_path, _replace("seed: 7", "seed: !!python/object/apply:os.system [ls]")) == [
        "recipe.yaml:2:7: seed: the YAML tag 'tag:yaml.org,2002:python/object/apply:os.system' is not allowed: "
        "recipes hold plain data (mappings, lists, strings, numbers, booleans, null); remove the tag"]


def test_duplicate_section(tmp_path):
    assert _problems(tmp_path, BASE_RECIPE + "seed: 3\n") == [
        "recipe.yaml:20:1: seed: duplicate key 'seed' (first given at line 2); keep one of them"]


def test_loss_needs_embedding_model(tmp_path):
    text = _replace("  batch_size: 32", "  loss: {name: triplet_batch_all}\n  batch_size: 32")
    assert _problems(tmp_path, text) == [
        "recipe.yaml:15:16: train.loss.name: loss 'triplet_batch_all' needs an embedding model; "
        "'simple_cnn' is a plain classifier (use cross_entropy)"]


def test_precision_not_supported_by_target(tmp_path):
    text = BASE_RECIPE + "deploy: {target: saved_model, precision: int8}\n"
    assert _problems(tmp_path, text) == ["recipe.yaml:20:42: deploy.precision: target 'saved_model' supports fp32, not int8"]


def test_unknown_exporter(tmp_path):
    assert _problems(tmp_path, BASE_RECIPE + "deploy: {target: tensort}\n") == [
        "recipe.yaml:20:18: deploy.target: unknown exporters plugin 'tensort'; did you mean 'tensorrt'? "
        "known: onnx, saved_model, tensorrt, tflite"]


def test_search_space_keys_and_values(tmp_path):
    text = BASE_RECIPE + (
        "search:\n"
        "  space:\n"
        "    train.optimizer.lr: {loguniform: [1.0e-4, 1.0e-1]}\n"
        "    model.params.widht: {choice: [0.5, 1.0]}\n"
        "    train.epochs: {choice: [1, 0]}\n"
        "    train.optimizer.lr2: {uniform: [2, 1]}\n")
    assert _problems(tmp_path, text) == [
        "recipe.yaml:25:26: search.space.train.optimizer.lr2: uniform: low must be below high"]
    text = text.replace("{uniform: [2, 1]}", "{uniform: [1, 2]}")
    assert _problems(tmp_path, text) == [
        "recipe.yaml:23:5: search.space.model.params.widht: 'model.params.widht' is not a recipe key: "
        "unknown key 'widht'; did you mean 'width'?",
        "recipe.yaml:24:5: search.space.train.epochs: value 0 for 'train.epochs' gives an invalid recipe: "
        "Input should be greater than or equal to 1",
        "recipe.yaml:25:5: search.space.train.optimizer.lr2: 'train.optimizer.lr2' is not a recipe key: "
        "unknown key 'lr2'; did you mean 'lr'?",
    ]


def test_share_training_searches_only_what_follows_training(tmp_path):
    text = BASE_RECIPE + (
        "prune: {percentile: 30}\n"
        "search:\n"
        "  share_training: true\n"
        "  space:\n"
        "    prune.percentile: {grid: [0, 50]}\n"
        "    train.optimizer.lr: {loguniform: [1.0e-4, 1.0e-1]}\n")
    assert _problems(tmp_path, text) == [
        "recipe.yaml:25:5: search.space.train.optimizer.lr: 'train.optimizer.lr' changes the training, which "
        "share_training runs once for every trial; search only prune.* and deploy.* keys, or set "
        "search.share_training: false"]
    path = tmp_path / "recipe.yaml"
    path.write_text(text.replace("    train.optimizer.lr: {loguniform: [1.0e-4, 1.0e-1]}\n", ""))
    assert load_recipe(path).recipe.search.share_training


def test_a_trial_must_reserve_something(tmp_path):
    """Ray Tune refuses a trial that reserves nothing: a recipe error, not a traceback at launch."""
    text = BASE_RECIPE + "search:\n  space: {train.epochs: {grid: [1, 2]}}\n  resources: {cpu: 0}\n"
    assert _problems(tmp_path, text) == [
        "recipe.yaml:22:14: search.resources: a trial must reserve some CPU or GPU; give e.g. cpu: 0.5"]
    assert _problems(tmp_path, text.replace("{cpu: 0}", "{cpu: 0, gpu: 0}")) == [
        "recipe.yaml:22:14: search.resources: a trial must reserve some CPU or GPU; give e.g. cpu: 0.5"]
    path = tmp_path / "recipe.yaml"
    path.write_text(text.replace("{cpu: 0}", "{cpu: 0, gpu: 0.25}"))
    assert load_recipe(path).recipe.search.resources.gpu == 0.25


@pytest.mark.parametrize(("override", "expected"), [
    ("train.epochs=abc", "--set train.epochs=abc: train.epochs: Input should be a valid integer, unable to parse string as an integer (got 'abc')"),
    ("train.epoch=3", "--set train.epoch=3: train.epoch: unknown key 'epoch'; did you mean 'epochs'?"),
    ("model.arch=cnn4d", "--set model.arch=cnn4d: model.arch: unknown architectures plugin 'cnn4d'; did you mean 'cnn3d'?"),
    ("noequals", "--set noequals: expected key.path=value, e.g. --set train.epochs=5"),
    ("train.epochs=[1", "--set train.epochs=[1: train.epochs: YAML syntax error: while parsing a flow sequence expected ',' or ']', but got '<stream end>'"),
    ("name.sub=1", "--set name.sub=1: name.sub: no such list item or key to set"),
])
def test_bad_override_names_the_override(tmp_path, override, expected):
    problems = _problems(tmp_path, BASE_RECIPE, [override])
    assert len(problems) == 1 and problems[0].startswith(expected)


def test_bad_extends(tmp_path):
    assert _problems(tmp_path, "extends: missing.yaml\n" + BASE_RECIPE)[0].startswith(
        "recipe.yaml:1:10: extends: base recipe 'missing.yaml' not found")
    (tmp_path / "loop.yaml").write_text("extends: recipe.yaml\n")
    assert _problems(tmp_path, "extends: loop.yaml\n" + BASE_RECIPE)[0].startswith(
        f"{tmp_path}/loop.yaml:1:10: extends: 'recipe.yaml' extends itself".replace(str(tmp_path) + "/", ""))


def test_error_in_base_points_into_base_file(tmp_path):
    (tmp_path / "base.yaml").write_text(BASE_RECIPE.replace("epochs: 2", "epochs: -2"))
    problems = _problems(tmp_path, "extends: base.yaml\nname: child\n")
    assert problems == ["base.yaml:16:11: train.epochs: Input should be greater than or equal to 1 (got -2)"]


def test_not_a_mapping(tmp_path):
    assert _problems(tmp_path, "- a\n- b\n") == [
        "recipe.yaml:1:1: a recipe must be a mapping of sections (name:, data:, model:, ...)"]


@pytest.mark.parametrize("recipe", sorted((__import__("pathlib").Path(__file__).parents[1] / "recipes").glob("*.yaml")),
                         ids=lambda p: p.name)
def test_misspelt_arch_in_every_shipped_recipe(tmp_path, recipe):
    lines = recipe.read_text().splitlines()
    number = next(i for i, line in enumerate(lines) if line.strip().startswith("arch:"))
    lines[number] = lines[number].replace("arch:", "arhc:")
    col = lines[number].index("arhc") + 1
    problems = _problems(tmp_path, "\n".join(lines) + "\n")
    assert problems == [f"recipe.yaml:{number + 1}:{col}: model.arhc: unknown key 'arhc'; did you mean 'arch'?"]
