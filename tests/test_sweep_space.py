"""Sweep pieces that need no Ray cluster: domains -> Tune objects, trial values -> recipe
overrides, the trial's figures from a run folder, the trial table, the Pareto front."""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path

import pytest
from ray.tune.search import sample

from gaitrun.atomic import write_json
from gaitrun.recipe import load_recipe
from gaitrun.recipe.search import Domain, Objective, Search
from gaitrun.sweep.figures import epoch_result, final_metrics, last_epochs
from gaitrun.sweep.folder import SweepFolder, is_sweep_folder
from gaitrun.sweep.results import best_row, columns, pareto_front, table_csv, write_pareto
from gaitrun.sweep.run import tune_config
from gaitrun.sweep.space import decode, param_space, targets, trial_overrides, trial_values, tune_domain


def _domain(**kw) -> Domain:
    return Domain.model_validate(kw)


@pytest.mark.parametrize(("spec", "cls", "sampler"), [
    ({"uniform": [0.1, 0.5]}, sample.Float, sample.Float._Uniform),
    ({"loguniform": [1e-4, 1e-2]}, sample.Float, sample.Float._LogUniform),
    ({"randint": [2, 9]}, sample.Integer, sample.Integer._Uniform),
])
def test_continuous_domains_become_tune_samplers(spec, cls, sampler):
    obj = tune_domain(_domain(**spec), "random")
    assert isinstance(obj, cls) and isinstance(obj.get_sampler(), sampler)
    low, high = next(iter(spec.values()))
    assert (obj.lower, obj.upper) == (low, high)


def test_quniform_is_quantised():
    obj = tune_domain(_domain(quniform=[0, 90, 15]), "random")
    assert isinstance(obj.get_sampler(), sample.Quantized) and obj.get_sampler().q == 15
    values = {obj.sample() for _ in range(50)}
    assert values <= {0.0, 15.0, 30.0, 45.0, 60.0, 75.0, 90.0} and len(values) > 2


def test_choice_and_grid():
    choice = _domain(choice=[0.001, 0.003])
    assert isinstance(tune_domain(choice, "random"), sample.Categorical)
    assert tune_domain(choice, "random").categories == [0.001, 0.003]
    assert tune_domain(choice, "optuna").categories == [0.001, 0.003]
    assert tune_domain(choice, "grid") == {"grid_search": [0.001, 0.003]}  # the grid algorithm enumerates
    assert tune_domain(_domain(grid=["index", None]), "random") == {"grid_search": ["index", None]}


def test_list_values_travel_as_json_and_come_back():
    domain = _domain(choice=[[8, 16], [8, 8, 8]])
    tune_obj = tune_domain(domain, "optuna")
    assert tune_obj.categories == ["[8, 16]", "[8, 8, 8]"]  # Optuna only samples scalars
    assert decode(domain, "[8, 8, 8]") == [8, 8, 8]
    assert decode(_domain(choice=["[8, 16]", "x"]), "[8, 16]") == "[8, 16]"  # a real string stays one


def test_trial_overrides_give_the_sampled_recipe(recipe_file: Path):
    search = Search.model_validate({"space": {
        "train.optimizer.lr": {"loguniform": [1e-6, 1e-2]}, "model.params.filters": {"choice": [[8, 16], [4]]},
        "cv.folds": {"randint": [2, 5]}, "data.params.n_class": {"grid": [3, 4]}}})
    space = param_space(search)
    assert set(space) == set(search.space)
    config = {"train.optimizer.lr": 1.5e-05, "model.params.filters": "[8, 16]", "cv.folds": 4,
              "data.params.n_class": 3}
    overrides = trial_overrides(search, config)
    assert overrides[0] == "search=null"
    recipe = load_recipe(recipe_file, overrides).recipe
    assert recipe.train.optimizer.lr == 1.5e-05
    assert recipe.model.params.filters == (8, 16)
    assert recipe.cv.folds == 4 and recipe.data.params.n_class == 3 and recipe.search is None
    assert trial_values(search, config)["model.params.filters"] == [8, 16]


def test_targets():
    assert [t.metric for t in targets(Search.model_validate({"space": {"a.b": {"grid": [1]}}, "metric": "acc"}))] == ["acc"]
    pareto = Search.model_validate({"space": {"a.b": {"grid": [1]}}, "objectives": [
        {"metric": "rank1_nm", "mode": "max"}, {"metric": "latency_ms_b1", "mode": "min"}]})
    assert [(t.metric, t.mode) for t in targets(pareto)] == [("rank1_nm", "max"), ("latency_ms_b1", "min")]


def test_epoch_logs_name_training_figures_apart():
    logs = {"loss": 2.0, "accuracy": 0.4, "val_loss": 1.5, "val_accuracy": 0.5, "lr": 1e-3}
    assert epoch_result(logs) == {"train_loss": 2.0, "train_accuracy": 0.4, "val_loss": 1.5,
                                  "val_accuracy": 0.5, "lr": 1e-3}


def _run_folder(run: Path) -> None:
    """A finished run's files as the stages write them (pruned, exported to ONNX, benchmarked)."""
    for fold, last in (("0", "0.5"), ("1", "0.7")):
        (run / "folds" / fold).mkdir(parents=True)
        (run / "folds" / fold / "history.csv").write_text(
            f"epoch,accuracy,loss,val_accuracy,val_loss\n1,0.1,2.0,0.2,1.9\n2,0.3,1.0,{last},0.8\n")
    write_json(run / "metrics.json", {"summary": {"mean": {"accuracy": 0.61, "f1_macro": 0.55}},
                                      "best_fold": "1", "test": {"classification": {"accuracy": 0.58}}})
    write_json(run / "pruned" / "pruning.json", {
        "after_finetune": {"mean": {"accuracy": 0.6}},
        "report": {"totals": {"params": {"before": 1000, "after": 400}, "flops": {"before": 9e6, "after": 4e6}}}})
    write_json(run / "export" / "export.json", {"parity": {"metric": "accuracy", "keras": 0.6, "exported": 0.59}})
    write_json(run / "bench.json", {"results": [
        {"backend": "keras", "batch_size": 1, "p50_ms": 3.0},
        {"backend": "onnxruntime (int8)", "batch_size": 1, "p50_ms": 0.4},
        {"backend": "onnxruntime (int8)", "batch_size": 8, "p50_ms": 1.1}]})


def test_final_metrics_of_a_run_folder(tmp_path: Path):
    _run_folder(tmp_path)
    assert last_epochs(tmp_path)["val_accuracy"] == pytest.approx(0.6)
    m = final_metrics(tmp_path)
    assert m["accuracy"] == 0.61 and m["test_accuracy"] == 0.58 and m["pruned_accuracy"] == 0.6
    assert m["params"] == 400 and m["flops"] == 4e6 and m["exported_accuracy"] == 0.59
    assert (m["latency_ms_b1"], m["latency_ms_b8"], m["latency_backend"]) == (0.4, 1.1, "onnxruntime (int8)")
    assert m["train_accuracy"] == pytest.approx(0.3) and m["val_loss"] == pytest.approx(0.8)


def _tradeoff_row(name: str, deployed: bool, p50: float, accuracy: float, size: int) -> dict:
    return {"name": name, "deployed": deployed, "backend": "keras" if "keras" in name else "onnx",
            "bytes": size, "accuracy": accuracy, "latency": {"1": {"p50_ms": p50}, "8": {"p50_ms": 4 * p50}}}


def test_final_metrics_are_the_deployed_rows(tmp_path: Path):
    """With a trade-off table, latency, size and exported accuracy are the deployed row's,
    not the first exported row's (the unpruned FP32 model); training figures come from the run
    the trial reuses (a share_training sweep, gaitrun prune RUN)."""
    trained, trial = tmp_path / "trained", tmp_path / "trial"
    _run_folder(trained)
    (trained / "bench.json").unlink()
    (trained / "pruned").rename(tmp_path / "trial")
    (trial / "pruned").mkdir()
    (trial / "pruning.json").rename(trial / "pruned" / "pruning.json")
    write_json(trial / "manifest.json", {"reuses_run": str(trained), "stages": []})
    write_json(trial / "bench.json", {"results": [], "rows": [
        _tradeoff_row("unpruned keras", False, 3.0, 0.62, 900),
        _tradeoff_row("unpruned fp32 (onnx)", False, 2.0, 0.62, 800),
        _tradeoff_row("pruned fp32 (onnx)", False, 1.0, 0.61, 400),
        _tradeoff_row("pruned int8 (onnx)", True, 0.4, 0.57, 120)]})
    m = final_metrics(trial)
    assert (m["latency_ms_b1"], m["latency_ms_b8"]) == (0.4, 1.6)
    assert (m["exported_accuracy"], m["exported_bytes"], m["latency_backend"]) == (0.57, 120, "pruned int8 (onnx)")
    assert m["accuracy"] == 0.61 and m["val_accuracy"] == pytest.approx(0.6)  # the shared training's
    assert m["pruned_accuracy"] == 0.6 and m["params"] == 400  # the trial's own pruning


def _row(tid: str, status: str, **figures) -> dict:
    return {"trial_id": tid, "status": status, "prune.percentile": 0, **figures}


OBJECTIVES = [Objective(metric="rank1_nm", mode="max"), Objective(metric="latency_ms_b1", mode="min")]
ROWS = [
    _row("a", "done", rank1_nm=0.90, latency_ms_b1=5.0),    # front: most accurate
    _row("b", "done", rank1_nm=0.85, latency_ms_b1=2.0),    # front
    _row("c", "done", rank1_nm=0.80, latency_ms_b1=2.5),    # dominated by b
    _row("d", "done", rank1_nm=0.70, latency_ms_b1=1.0),    # front: fastest
    _row("e", "done", rank1_nm=0.85, latency_ms_b1=2.0),    # ties b: neither dominates
    _row("f", "failed", rank1_nm=0.99, latency_ms_b1=0.1),  # failed trials do not count
    _row("g", "done", rank1_nm=math.nan, latency_ms_b1=0.5),  # no score: not on the front
    _row("h", "stopped", rank1_nm=0.95, latency_ms_b1=0.2),  # stopped early: not finished
]


def test_pareto_front_of_a_hand_made_table():
    assert sorted(ROWS[i]["trial_id"] for i in pareto_front(ROWS, OBJECTIVES)) == ["a", "b", "d", "e"]
    flipped = [Objective(metric="rank1_nm", mode="min"), Objective(metric="latency_ms_b1", mode="max")]
    assert sorted(ROWS[i]["trial_id"] for i in pareto_front(ROWS, flipped)) == ["a", "c", "d"]
    three = [*OBJECTIVES, Objective(metric="x", mode="max")]
    rows = [_row("p", "done", rank1_nm=0.8, latency_ms_b1=2.0, x=1.0), _row("q", "done", rank1_nm=0.8, latency_ms_b1=2.0, x=2.0)]
    assert pareto_front(rows, three) == [1]


def test_best_row_and_table(tmp_path: Path):
    assert best_row(ROWS, OBJECTIVES[0])["trial_id"] == "a"
    assert best_row(ROWS, OBJECTIVES[1])["trial_id"] == "g"  # its latency counts without a rank1
    assert best_row([r for r in ROWS if r["status"] != "done"], OBJECTIVES[0]) is None
    search = Search.model_validate({"space": {"prune.percentile": {"grid": [0, 30]}},
                                    "objectives": [o.model_dump() for o in OBJECTIVES]})
    rows = [dict(r, failures=0, run_folder=f"trials/{r['trial_id']}/x", error="") for r in ROWS]
    cols = columns(rows, search)
    assert cols[:6] == ["trial_id", "status", "prune.percentile", "rank1_nm", "latency_ms_b1", "pareto"]
    assert cols[-2:] == ["run_folder", "error"]
    table = list(csv.DictReader(io.StringIO(table_csv(rows, cols))))
    assert [r["trial_id"] for r in table] == list("abcdefgh") and table[6]["rank1_nm"] == "nan"


def test_write_pareto(tmp_path: Path):
    folder = SweepFolder(tmp_path, {})
    rows = [dict(r) for r in ROWS]
    front = write_pareto(folder, rows, OBJECTIVES)
    assert [r["trial_id"] for r in front] == ["d", "b", "e", "a"]  # by the first objective
    saved = json.loads((tmp_path / "pareto.json").read_text())
    assert [r["trial_id"] for r in saved["front"]] == ["d", "b", "e", "a"]
    assert saved["dominated"] == ["c"]
    assert [r["pareto"] for r in rows] == [True, True, False, True, True, None, None, None]
    assert (tmp_path / "plots" / "pareto.png").stat().st_size > 1000


def test_sweep_folder(tmp_path: Path, recipe_file: Path):
    loaded = load_recipe(recipe_file, ["search={space: {train.epochs: {grid: [1, 2]}}}"])
    folder = SweepFolder.create(loaded, artifacts=tmp_path, strict=False)
    assert folder.path.name.endswith(f"-{loaded.hash}-sweep") and folder.path.parent.name == "digits_test"
    assert is_sweep_folder(folder.path) and not is_sweep_folder(tmp_path)
    again = SweepFolder.open(folder.path)
    assert again.manifest["recipe_hash"] == loaded.hash and again.manifest["status"] == "created"
    assert load_recipe(folder.file("recipe.yaml")).hash == loaded.hash


@pytest.mark.parametrize(("algorithm", "scheduler"), [("grid", "fifo"), ("random", "asha"), ("optuna", "median")])
def test_tune_config_single_metric(recipe_file: Path, algorithm: str, scheduler: str):
    from ray.tune.schedulers import ASHAScheduler, MedianStoppingRule
    from ray.tune.search import BasicVariantGenerator
    from ray.tune.search.optuna import OptunaSearch

    space = "{train.optimizer.lr: {loguniform: [0.0001, 0.01]}}"
    loaded = load_recipe(recipe_file, [f"search={{space: {space}, algorithm: {algorithm}, scheduler: {scheduler}, "
                                       "num_samples: 3, max_concurrent: 2, time_budget_s: 60, metric: accuracy}"])
    cfg = tune_config(loaded.recipe)
    assert (cfg.metric, cfg.mode, cfg.num_samples, cfg.time_budget_s) == ("accuracy", "max", 3, 60)
    searcher = {"grid": BasicVariantGenerator, "random": BasicVariantGenerator, "optuna": OptunaSearch}[algorithm]
    assert isinstance(cfg.search_alg, searcher) and cfg.reuse_actors  # the work process is per trial
    sched = {"fifo": type(None), "asha": ASHAScheduler, "median": MedianStoppingRule}[scheduler]
    assert type(cfg.scheduler) is sched
    # the variant generator limits concurrency itself; Optuna gets Tune's limiter
    assert cfg.max_concurrent_trials == (2 if algorithm == "optuna" else None)


def test_grace_period_sets_the_first_rung(recipe_file: Path):
    space = "{train.optimizer.lr: {loguniform: [0.0001, 0.01]}}"
    loaded = load_recipe(recipe_file, [f"search={{space: {space}, scheduler: asha, grace_period: 4}}",
                                       "train.epochs=24"])
    rungs = tune_config(loaded.recipe).scheduler._brackets[0]._rungs
    assert sorted(milestone for milestone, _ in rungs) == [4, 16]  # then every 4 times as many epochs


def test_tune_config_pareto(recipe_file: Path):
    loaded = load_recipe(recipe_file, ["search={space: {train.optimizer.lr: {uniform: [0.001, 0.01]}}, "
                                       "algorithm: optuna, scheduler: asha, objectives: [{metric: accuracy, mode: max}, "
                                       "{metric: latency_ms_b1, mode: min}]}"])
    cfg = tune_config(loaded.recipe)
    assert cfg.metric is None and cfg.mode is None  # each part gets its own
    assert (cfg.search_alg.metric, cfg.search_alg.mode) == (["accuracy", "latency_ms_b1"], ["max", "min"])
    assert cfg.scheduler.metric == "accuracy"  # ASHA stops on the first objective
