"""extends: and --set overrides."""

from __future__ import annotations

from conftest import BASE_RECIPE

from gaitrun.recipe import load_recipe


def test_extends_deep_merges_relative_to_recipe(tmp_path):
    (tmp_path / "bases").mkdir()
    (tmp_path / "bases" / "base.yaml").write_text(BASE_RECIPE)
    child = tmp_path / "child.yaml"
    child.write_text("extends: bases/base.yaml\nname: child\ntrain:\n  epochs: 5\naugment: []\n")
    recipe = load_recipe(child).recipe
    assert recipe.name == "child"
    assert recipe.train.epochs == 5 and recipe.train.batch_size == 32  # merged, not replaced
    assert recipe.augment == []  # lists replace
    assert recipe.train.optimizer.name == "adam"


def test_extends_chain_and_list(tmp_path):
    (tmp_path / "a.yaml").write_text(BASE_RECIPE)
    (tmp_path / "b.yaml").write_text("extends: a.yaml\nseed: 11\n")
    (tmp_path / "c.yaml").write_text("train: {epochs: 9}\n")
    top = tmp_path / "top.yaml"
    top.write_text("extends: [b.yaml, c.yaml]\nname: top\n")
    recipe = load_recipe(top).recipe
    assert (recipe.seed, recipe.train.epochs, recipe.name) == (11, 9, "top")


def test_overrides_parse_yaml_scalars(recipe_file):
    recipe = load_recipe(recipe_file, ["train.epochs=4", "train.optimizer.lr=1e-2", "augment.0.shift.max_px=3",
                                       "evaluate.metrics=[accuracy]", "deploy={target: onnx}"]).recipe
    assert recipe.train.epochs == 4 and recipe.train.optimizer.lr == 0.01
    assert recipe.augment[0].shift.max_px == 3
    assert recipe.evaluate.metrics == ["accuracy"]
    assert recipe.deploy.target == "onnx" and recipe.deploy.precision == "fp32"


def test_hash_ignores_key_order_and_tracks_values(tmp_path, recipe_file):
    a = load_recipe(recipe_file)
    reordered = tmp_path / "r2.yaml"
    lines = BASE_RECIPE.splitlines(keepends=True)
    reordered.write_text("".join([lines[1], lines[0], *lines[2:]]))
    assert load_recipe(reordered).hash == a.hash
    assert load_recipe(recipe_file, ["seed=8"]).hash != a.hash
