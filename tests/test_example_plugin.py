"""The public plugin API as the README documents it, exercised by the example third-party package
``tests/example_plugin`` (installed with the dev environment): its dataset, architecture and
augmentation use only ``gaitrun.plugin_api`` and run in a recipe end to end."""

from __future__ import annotations

import json

from gaitrun.families import FAMILIES, INPUT_SOURCES, contract_problems
from gaitrun.registry import registries

RECIPE = """\
name: example_plugin
seed: 3
data: {adapter: dots, params: {subjects: 4, per_subject: 8}, modality: rgb, clip: {frames: 1, size: [12, 12]}, cache: none}
augment:
  - invert: {p: 0.1}
model: {arch: tiny_mlp, params: {units: 16}}
train: {epochs: 1, batch_size: 8, tensorboard: false}
cv: {scheme: group_kfold, folds: 2, group_by: subject}
evaluate: {metrics: [accuracy], plots: false}
"""


def test_every_example_plugin_fits_its_family():
    regs = registries()
    for family, name in (("datasets", "dots"), ("architectures", "tiny_mlp"), ("augmentations", "invert")):
        plugin = regs[family].get(name)
        assert plugin.origin.startswith(f"entry point '{family}.{name}' of gaitrun-example-plugin")
        assert contract_problems(FAMILIES[family], plugin.module) == []
    dots = regs["datasets"].get("dots")
    assert (dots.declared("KIND"), "rgb") in INPUT_SOURCES[regs["architectures"].get("tiny_mlp").declared("INPUT_KIND")]


def test_scan_lists_samples_and_load_returns_the_documented_raw_array(tmp_path):
    from gaitrun.plugin_api import Sample

    dots = registries()["datasets"].get("dots")
    params = dots.params(subjects=2, per_subject=3, size=8)
    samples = dots.impl("scan")(params, cache_dir=tmp_path, seed=0)
    assert all(isinstance(s, Sample) for s in samples) and len(samples) == 6
    assert {s.subject for s in samples} == {"s00", "s01"}
    image = dots.impl("load")(samples[0], params)
    assert image.shape == (8, 8, 3) and image.dtype == "uint8" and image.max() == 255


def test_a_recipe_of_example_plugins_runs_and_is_scored_on_the_declared_logits(run_cli, tmp_path):
    (tmp_path / "r.yaml").write_text(RECIPE)
    code, _, err = run_cli("run", tmp_path / "r.yaml", "--artifacts", tmp_path / "art", "--quiet")
    assert code == 0, err
    run = next((tmp_path / "art" / "example_plugin").iterdir())
    metrics = json.loads((run / "metrics.json").read_text())
    # tiny_mlp's softmax is the layer "predictions" (LOGITS): scored because it is declared
    assert [0.0 <= f["classification"]["accuracy"] <= 1.0 for f in metrics["folds"]] == [True, True]


def test_a_dataset_that_cannot_feed_the_architecture_is_refused(run_cli, tmp_path):
    (tmp_path / "r.yaml").write_text(RECIPE.replace("arch: tiny_mlp, params: {units: 16}", "arch: cnn3d"))
    code, _, err = run_cli("validate", tmp_path / "r.yaml")
    assert code == 2 and "architecture 'cnn3d' takes clip3d input, which rgb images from 'dots' cannot feed" in err


def test_the_readme_documents_the_public_api_the_example_package_uses():
    """The README's "What a plugin may import" names every field of ``Sample`` and ``Fold`` and
    everything ``gaitrun.plugin_api`` exports; the example package imports nothing else of gaitrun."""
    import ast
    import dataclasses
    from pathlib import Path

    from gaitrun import plugin_api

    repo = Path(__file__).resolve().parents[1]
    readme = (repo / "README.md").read_text()
    start = readme.index("**What a plugin may import**")
    paragraph = readme[start: readme.index("\n\n", start)]
    for cls in (plugin_api.Sample, plugin_api.Fold):
        assert [f.name for f in dataclasses.fields(cls) if f"`{f.name}`" not in paragraph] == [], cls
    protocols = {"Dataset", "Architecture", "Augmentation", "CvScheme", "Pruner", "Exporter"}
    assert [n for n in plugin_api.__all__ if n not in protocols and f"`{n}" not in paragraph] == []
    used = set()
    for path in (repo / "tests" / "example_plugin" / "src").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("gaitrun"):
                used.add(node.module)
            elif isinstance(node, ast.Import):
                used |= {a.name for a in node.names if a.name.startswith("gaitrun")}
    assert used == {"gaitrun.plugin_api"}
