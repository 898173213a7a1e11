"""The recipe's folds and held-out test split (``gaitrun.train.splits``): a test split that
shares subjects with training is bad input, refused before any training, in plain words."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from test_dataset_uci_har import write_tree

from gaitrun.data.records import Sample
from gaitrun.errors import DataError
from gaitrun.plugins.cv import holdout


@pytest.fixture()
def har_recipe(tmp_path: Path) -> Path:
    """The tiny UCI HAR tree: subjects 10 and 11 in both its train and its test split."""
    root = write_tree(tmp_path / "UCI HAR Dataset")
    recipe = tmp_path / "har.yaml"
    recipe.write_text(f"""\
name: har_overlap
data: {{adapter: uci_har, params: {{root: "{root}"}}, modality: inertial, clip: {{frames: 128}}, cache: none}}
model: {{arch: har_cnn1d}}
train: {{epochs: 1, tensorboard: false}}
cv: {{scheme: kfold, folds: 2, test: {{use_dataset_split: true}}}}
""")
    return recipe


def test_a_test_split_sharing_subjects_stops_before_training(run_cli, har_recipe, tmp_path):
    code, _, err = run_cli("run", har_recipe, "--artifacts", tmp_path / "art", "--quiet")
    run = next((tmp_path / "art" / "har_overlap").iterdir())
    assert code == 2
    assert err.strip() == (f"gaitrun: error: {tmp_path}/UCI HAR Dataset/test: the test split shares subject "
                           "'10', '11' with the training folds; set cv.test.group_by: null to accept that, "
                           "or hold out by cv.test.fraction instead of cv.test.use_dataset_split")
    stages = {s["name"]: s["status"] for s in json.loads((run / "manifest.json").read_text())["stages"]}
    assert stages["train"] == "failed" and not (run / "folds").exists()  # nothing trained
    assert "np.str_" not in err and not (run / "traceback.txt").exists()


def test_group_by_a_missing_field_names_the_test_key(run_cli, har_recipe, tmp_path):
    har_recipe.write_text(har_recipe.read_text().replace("use_dataset_split: true", "fraction: 0.5, group_by: walker"))
    code, _, err = run_cli("run", har_recipe, "--artifacts", tmp_path / "art", "--quiet")
    assert code == 2 and "has no 'walker' metadata" in err and "choose another cv.test.group_by field" in err


def test_messages_hold_plain_strings_not_numpy_reprs():
    samples = [Sample(path=f"s{i}", label="a", split=s) for i, s in enumerate(("train", "test", "train"))]
    with pytest.raises(DataError) as info:
        holdout.split(samples, params=holdout.Params(use_dataset_split=True), seed=0)
    assert str(info.value).endswith("(found splits 'test', 'train')")

    from gaitrun.folds import Fold, check_disjoint

    with pytest.raises(AssertionError, match=r"groups '1' in train and validation$"):
        check_disjoint(Fold("0", np.array([0]), np.array([1])), np.array(["1", "1"]))
