"""Run folders: layout, manifest, atomic writes and stage-level resume."""

from __future__ import annotations

import json

import pytest

from gaitrun.atomic import atomic_path, write_json
from gaitrun.errors import RunFolderError
from gaitrun.recipe import load_recipe
from gaitrun.runfolder import RunFolder


def test_create_layout_and_manifest(recipe_file, tmp_path):
    loaded = load_recipe(recipe_file)
    folder = RunFolder.create(loaded, ["data", "train", "report"], artifacts=tmp_path / "artifacts")
    assert folder.path.parent == tmp_path / "artifacts" / "digits_test"
    assert folder.path.name.endswith("-" + loaded.hash) and len(loaded.hash) == 8
    manifest = json.loads((folder.path / "manifest.json").read_text())
    assert manifest["seed"] == 7 and manifest["recipe_hash"] == loaded.hash
    assert "pydantic" in manifest["versions"] and manifest["host"]["cpus"] >= 1
    assert [s["status"] for s in manifest["stages"]] == ["pending"] * 3
    # the resolved recipe runs again as is, to the same hash
    assert load_recipe(folder.path / "recipe.yaml").hash == loaded.hash


def test_two_runs_never_share_a_folder(recipe_file, tmp_path):
    loaded = load_recipe(recipe_file)
    a = RunFolder.create(loaded, ["data"], artifacts=tmp_path)
    b = RunFolder.create(loaded, ["data"], artifacts=tmp_path)
    assert a.path != b.path


def test_atomic_write_leaves_old_file_on_failure(tmp_path):
    target = tmp_path / "m.json"
    write_json(target, {"v": 1})
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text('{"v": 2, "half')
            raise RuntimeError("killed mid-write")
    assert json.loads(target.read_text()) == {"v": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["m.json"]


def test_atomic_write_replaces_folders(tmp_path):
    target = tmp_path / "saved"
    for version in ("1", "2"):
        with atomic_path(target) as tmp:
            tmp.mkdir()
            (tmp / "v").write_text(version)
    assert (target / "v").read_text() == "2"


def test_unwritable_artifacts_is_a_clean_error(recipe_file, tmp_path):
    blocker = tmp_path / "artifacts"
    blocker.write_text("a file where the artifacts folder should be")  # fails even for root
    with pytest.raises(RunFolderError, match="cannot create run folder"):
        RunFolder.create(load_recipe(recipe_file), ["data"], artifacts=blocker)


def test_unwritable_target_is_a_clean_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(RunFolderError, match="cannot write"):
        write_json(blocker / "sub" / "m.json", {})


def test_a_folder_in_use_by_another_process_is_refused(recipe_file, tmp_path):
    """Two processes never work in one run folder; the lock dies with its holder (kill -9)."""
    import subprocess
    import sys

    folder = RunFolder.create(load_recipe(recipe_file), ["data"], artifacts=tmp_path)
    assert RunFolder.open(folder.path).path == folder.path  # this process already holds it
    folder.close()
    code = (f"import time; from gaitrun.runfolder import RunFolder; RunFolder.open({str(folder.path)!r}); "
            "print('held', flush=True); time.sleep(120)")
    holder = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(RunFolderError, match="in use by another gaitrun process"):
            RunFolder.open(folder.path)
    finally:
        holder.kill()  # SIGKILL: no clean-up code runs in the holder
        holder.wait()
    assert RunFolder.open(folder.path).path == folder.path


def test_open_refuses_non_run_folder(tmp_path):
    with pytest.raises(RunFolderError, match="not a run folder"):
        RunFolder.open(tmp_path)


def test_pending_stages_rerun_a_crashed_stage(recipe_file, tmp_path):
    folder = RunFolder.create(load_recipe(recipe_file), ["data", "train", "report"], artifacts=tmp_path)
    folder.set_status("data", "done")
    folder.set_status("train", "running")  # the process died here
    reopened = RunFolder.open(folder.path)
    assert reopened.pending_stages() == ["train", "report"]


def test_errors_survive_pickling():
    """Errors cross process boundaries (Ray trials) intact."""
    import pickle

    from gaitrun.errors import DataError, PluginError, Problem, RecipeError, StageError

    for err in (DataError("a.png", "truncated"), StageError("export", "too lossy"),
                PluginError("bad", family="cv", plugin="x"), RecipeError([Problem("r.yaml", 1, 2, "k", "m")])):
        back = pickle.loads(pickle.dumps(err))
        assert type(back) is type(err) and str(back) == str(err)
    assert pickle.loads(pickle.dumps(DataError("a.png", "truncated"))).path == "a.png"


def test_explicit_null_survives_the_resolved_recipe(tmp_path):
    from conftest import BASE_RECIPE

    path = tmp_path / "r.yaml"
    path.write_text(BASE_RECIPE.replace("cv: {scheme: stratified_kfold, folds: 3}",
                                        "cv: {scheme: holdout, group_by: null}"))
    loaded = load_recipe(path)
    folder = RunFolder.create(loaded, ["data"], artifacts=tmp_path / "art")
    again = load_recipe(folder.path / "recipe.yaml")
    assert again.recipe.cv.group_by is None and again.hash == loaded.hash
