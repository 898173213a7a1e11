"""The command line: exit codes, one-line errors, no heavy imports on start-up paths, resume."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import BASE_RECIPE

REPO = Path(__file__).resolve().parents[1]
HEAVY = ("tensorflow", "keras", "ray", "onnxruntime", "tensorrt", "tf2onnx", "cv2", "h5py", "sklearn")


def _imports_after(argv: list[str], cwd: Path) -> tuple[int, list[str], str]:
    code = ("import sys, json\nfrom gaitrun.cli import main\n"
            "try:\n    rc = main(sys.argv[1:])\nexcept SystemExit as exc:\n    rc = exc.code\n"
            f"heavy = [m for m in {HEAVY!r} if m in sys.modules]\n"
            "sys.stdout.write('\\nHEAVY=' + json.dumps(heavy) + '\\n'); sys.exit(rc)")
    res = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True, cwd=cwd)
    heavy = json.loads(res.stdout.rsplit("HEAVY=", 1)[1])
    return res.returncode, heavy, res.stderr


@pytest.mark.parametrize("argv", [["--help"], ["validate", "RECIPE"], ["plan", "RECIPE"],
                                  ["plugins"], ["schema"], ["validate", "BROKEN"]])
def test_start_up_paths_import_nothing_heavy(argv, recipe_file, tmp_path):
    broken = tmp_path / "broken.yaml"
    broken.write_text(BASE_RECIPE.replace("epochs: 2", "epochs: 0"))
    argv = [str(recipe_file) if a == "RECIPE" else str(broken) if a == "BROKEN" else a for a in argv]
    rc, heavy, err = _imports_after(argv, tmp_path)
    assert heavy == [], f"{argv} imported {heavy}"
    assert rc == (2 if str(broken) in argv else 0), err


def test_validate_ok_and_exit_codes(run_cli, recipe_file, tmp_path):
    code, out, err = run_cli("validate", recipe_file)
    assert code == 0 and "ok (recipe hash" in out and err == ""
    broken = tmp_path / "broken.yaml"
    broken.write_text(BASE_RECIPE.replace("  epochs: 2", "  epoch: 2"))
    code, out, err = run_cli("validate", recipe_file, broken)
    assert code == 2
    assert err == f"{broken}:16:3: train.epoch: unknown key 'epoch'; did you mean 'epochs'?\n"


def test_validate_json(run_cli, recipe_file):
    code, out, _ = run_cli("validate", recipe_file, "--json", "--set", "train.epochs=0")
    assert code == 2
    payload = json.loads(out)
    assert payload["ok"] is False
    assert payload["results"][0]["errors"] == [
        "--set train.epochs=0: train.epochs: Input should be greater than or equal to 1 (got 0)"]


@pytest.mark.parametrize("argv", [["run"], ["validate", "--frobnicate", "x.yaml"], ["plugins", "nosuch"],
                                  ["resume"], ["data", "synthetic-gait"], ["run", "missing.yaml"],
                                  ["data", "synthetic-gait", "--out", "d", "--subjects", "x"]])
def test_bad_flags_one_line_exit_2(run_cli, argv):
    code, out, err = run_cli(*argv)
    assert code == 2
    assert len(err.strip().splitlines()) == 1, err
    assert "Traceback" not in err


def test_recipe_path_shortcut(run_cli, tmp_path):
    code, _, err = run_cli(tmp_path / "nope.yaml")
    assert code == 2 and err.strip() == f"{tmp_path}/nope.yaml: no such file"


def test_plugins_json_lists_params_with_defaults(run_cli):
    code, out, _ = run_cli("plugins", "cv", "--json")
    rows = {r["name"]: r for r in json.loads(out)}
    assert code == 0 and set(rows) >= {"group_kfold", "gait_protocol", "holdout"}
    params = {p["name"]: p for p in rows["group_kfold"]["params"]}
    assert params["folds"]["default"] == 5 and params["group_by"]["default"] == "subject"


def test_plugins_table(run_cli):
    code, out, _ = run_cli("plugins", "architectures")
    assert code == 0 and "cnn3d" in out and "tiny_mlp" in out


def test_plan_lists_stages(run_cli, recipe_file):
    code, out, _ = run_cli("plan", recipe_file, "--json")
    stages = [s["stage"] for s in json.loads(out)["stages"]]
    assert code == 0 and stages == ["data", "train", "report"]
    code, out, _ = run_cli("plan", recipe_file, "--json", "--set", "deploy={target: onnx}",
                           "--set", "prune={percentile: 30}")
    assert [s["stage"] for s in json.loads(out)["stages"]] == ["data", "train", "prune", "export", "bench", "report"]


def test_schema_is_json_schema_with_plugins(run_cli):
    code, out, _ = run_cli("schema")
    schema = json.loads(out)
    assert code == 0 and schema["title"] == "gaitrun recipe"
    assert {"data", "model", "train", "cv", "prune", "deploy", "search", "extends"} <= set(schema["properties"])
    assert "Model_cnn3d" in json.dumps(schema)


def test_schema_validates_shipped_recipes():
    jsonschema = pytest.importorskip("jsonschema")
    from gaitrun.recipe.schema import recipe_schema
    from gaitrun.yamlio import load_file

    schema = recipe_schema()
    for recipe in sorted((REPO / "recipes").glob("*.yaml")):
        jsonschema.validate(load_file(recipe).data, schema)


def test_shipped_recipes_validate_and_sweeps_are_not_benchmarked(run_cli):
    """Every shipped recipe, the sweeps included, passes ``gaitrun validate``; the recipe
    benchmark (bench/recipes.py) runs the single-run recipes and leaves the sweeps to gaitrun."""
    import importlib.util

    shipped = sorted((REPO / "recipes").glob("*.yaml"))
    for recipe in shipped:
        code, out, err = run_cli("validate", recipe)
        assert code == 0 and ": ok (recipe hash" in out, err
    spec = importlib.util.spec_from_file_location("bench_recipes", REPO / "bench" / "recipes.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    sweeps = {r.name for r in shipped} - {r.name for r in bench.shipped_runs()}
    assert sweeps == {"sweep_asha_lr.yaml", "sweep_prune_precision.yaml"}


FAST = ["--set", "data.max_samples=300", "--set", "train.epochs=1", "--set", "cv.folds=2"]


def test_recipe_bench_runs_seeds_and_keeps_every_run(recipe_file, tmp_path):
    """bench/recipes.py on one recipe over two seeds: each run's figure, wall and CPU time and
    load in --out (written after every run), the mean ± sd table on stdout."""
    out = tmp_path / "bench.json"
    overrides = [a for pair in zip(["--set"] * 3, FAST[1::2], strict=True) for a in pair]
    res = subprocess.run([sys.executable, str(REPO / "bench" / "recipes.py"), "--recipe", str(recipe_file),
                          "--seeds", "2", "--artifacts", str(tmp_path / "art"), "--out", str(out), *overrides],
                         capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-2000:]
    runs = json.loads(out.read_text())["runs"]
    seed = int(yaml_seed(recipe_file))
    assert [(r["recipe"], r["seed"], r["ok"]) for r in runs] == [("recipe", seed, True), ("recipe", seed + 1, True)]
    for r in runs:
        assert 0.0 < r["figures"]["accuracy"] <= 1.0
        assert r["cpu_s"] > 1.0 and r["wall_s"] > 1.0  # TensorFlow's import alone costs seconds
        assert len(r["load"]) == 2
        assert (Path(r["run_folder"]) / "metrics.json").is_file()
    row = next(line for line in res.stdout.splitlines() if line.startswith("| recipe | accuracy |"))
    assert " ± " in row and "machine: " in res.stdout


def test_run_then_stage_level_resume(run_cli, recipe_file, tmp_path):
    artifacts = tmp_path / "artifacts"
    code, out, err = run_cli("run", recipe_file, "--artifacts", artifacts, "--quiet", *FAST)
    assert code == 0, err
    run_dir = next((artifacts / "digits_test").iterdir())
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert [(s["name"], s["status"]) for s in manifest["stages"]] == [
        ("data", "done"), ("train", "done"), ("report", "done")]
    code, out, _ = run_cli("resume", run_dir)
    assert code == 0 and "nothing to resume" in out
    # a crash during the report stage: resume runs only what is unfinished
    manifest["stages"][2]["status"] = "running"
    (run_dir / "manifest.json").write_text(json.dumps(manifest))
    (run_dir / "report.md").unlink()
    mtimes = {p: p.stat().st_mtime_ns for p in (run_dir / "data.json", run_dir / "metrics.json")}
    code, _, err = run_cli("resume", run_dir, "--quiet")
    assert code == 0, err
    assert (run_dir / "report.md").is_file()
    assert all(p.stat().st_mtime_ns == t for p, t in mtimes.items())  # finished stages not redone
    assert json.loads((run_dir / "data.json").read_text())["samples"] == 300


def test_json_and_quiet_keep_stdout_clean(recipe_file, tmp_path):
    """--json prints one JSON document; --quiet prints no progress and no bench table (which
    goes to stderr with the progress) on success, only the final result line."""
    exe = Path(sys.executable).parent / "gaitrun"

    def gaitrun(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([str(exe), *map(str, args)], capture_output=True, text=True, timeout=600)

    deploy = ["--set", "deploy={target: onnx, batch_sizes: [1], bench: {warmup: 1, iterations: 2}}"]
    res = gaitrun("run", recipe_file, "--artifacts", tmp_path, "--json", *FAST, *deploy)
    assert res.returncode == 0, res.stderr
    result = json.loads(res.stdout)
    assert result["ok"] and result["stages"]["bench"] == "done"
    res = gaitrun("bench", result["run_folder"], "--quiet")
    assert res.returncode == 0, res.stderr
    assert res.stdout.startswith(f"run finished: {result['run_folder']} (accuracy ") and res.stdout.count("\n") == 1
    assert "samples/s" not in res.stderr
    res = gaitrun("bench", result["run_folder"])
    assert res.returncode == 0 and "samples/s" in res.stderr and "unpruned fp32 (onnx)" in res.stderr


def test_resume_refuses_edited_recipe(run_cli, recipe_file, tmp_path):
    from gaitrun.recipe import load_recipe
    from gaitrun.runfolder import RunFolder

    RunFolder.create(load_recipe(recipe_file), ["data", "train"], artifacts=tmp_path)
    run_dir = next((tmp_path / "digits_test").iterdir())
    text = (run_dir / "recipe.yaml").read_text()
    (run_dir / "recipe.yaml").write_text(text.replace("epochs: 2", "epochs: 3"))
    code, _, err = run_cli("resume", run_dir)
    assert code == 2 and "no longer matches the run's recipe hash" in err


def test_run_folder_of_an_earlier_version_still_matches(recipe_file, tmp_path):
    """A run folder's recipe.yaml written before a key with a default existed keeps its run's
    hash (resume, prune and export accept it); an edit to it still does not."""
    import hashlib

    from gaitrun.recipe import load_recipe
    from gaitrun.yamlio import dump

    earlier = load_recipe(recipe_file).resolved
    del earlier["train"]["validate_every"]  # as if this version had not had the key
    earlier_hash = hashlib.sha256(json.dumps(earlier, sort_keys=True, separators=(",", ":")).encode()).hexdigest()[:8]
    path = tmp_path / "recipe.yaml"
    path.write_text(dump(earlier))
    again = load_recipe(path)
    assert again.hash != earlier_hash and again.matches(earlier_hash)
    path.write_text(dump(earlier).replace("epochs: 2", "epochs: 3"))
    assert not load_recipe(path).matches(earlier_hash)


def test_console_script_installed():
    exe = Path(sys.executable).parent / "gaitrun"
    res = subprocess.run([str(exe), "--version"], capture_output=True, text=True)
    assert res.returncode == 0 and res.stdout.startswith("gaitrun ")


def test_plan_shows_keys_set_to_null(run_cli, recipe_file):
    """``group_by: null`` (no grouping) must not read as the default ``subject``."""
    code, out, _ = run_cli("plan", recipe_file, "--json", "--set", "cv={scheme: holdout, fraction: 0.2, "
                           "group_by: null}")
    train = next(s for s in json.loads(out)["stages"] if s["stage"] == "train")["config"]
    assert code == 0 and train["cv"]["group_by"] is None and "group_by" in train["cv"]
    code, out, _ = run_cli("plan", recipe_file, "--set", "cv={scheme: holdout, fraction: 0.2, group_by: null}")
    assert code == 0 and "group_by: null" in out


def test_unknown_plugin_family_has_a_did_you_mean(run_cli):
    code, _, err = run_cli("plugins", "architecture")
    assert code == 2
    assert err.strip() == ("gaitrun plugins: error: unknown plugin family 'architecture'; did you mean "
                           "'architectures'? known: datasets, architectures, augmentations, cv, pruners, exporters")


def yaml_seed(recipe: Path) -> int:
    from gaitrun.yamlio import load_file

    return int(load_file(recipe).data.get("seed", 0))
