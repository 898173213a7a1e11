"""Run a sweep with Ray Tune: the Tuner from the ``search:`` section, on a local Ray that
gaitrun starts (``address: null``) or on an existing cluster (``"auto"``, ``host:port`` or
``$RAY_ADDRESS``); ``resume_sweep`` restores an interrupted sweep from its ``tune/`` state.
A sweep of distributed trials (``train.distributed``) first checks that the cluster can hold
one, and runs no more at once than it holds (``capacity.py``). Ray is imported only inside
functions, when a sweep runs."""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..errors import UsageError, printable
from ..recipe.search import Search
from .capacity import concurrent_trials
from .cluster import ray_session
from .folder import SweepFolder
from .results import summarize
from .shared import shared_training
from .space import param_space, targets
from .trainable import run_trial


def trial_dirname(trial: Any) -> str:
    """Tune's folder of a trial under ``tune/``: its id (the run folder is under ``trials/<id>/``)."""
    return trial.trial_id


def _trainable(folder: SweepFolder, search: Search, strict: bool, shared: str | None) -> Any:
    from ray import tune

    fn = tune.with_parameters(run_trial, sweep_dir=str(folder.path), search=search,
                              workdir=folder.manifest["workdir"], strict=strict, reuses_run=shared)
    return tune.with_resources(fn, {"cpu": search.resources.cpu, "gpu": search.resources.gpu})


def _searcher(search: Search, seed: int, max_concurrent: int) -> Any:
    """Tune's variant generator (grid, random; it limits concurrency itself) or Optuna's TPE."""
    if search.algorithm != "optuna":
        from ray.tune.search import BasicVariantGenerator

        return BasicVariantGenerator(max_concurrent=max_concurrent, random_state=seed)
    import optuna
    from ray.tune.search.optuna import OptunaSearch

    sampler = optuna.samplers.TPESampler(seed=seed)
    if search.objectives is None:
        return OptunaSearch(sampler=sampler)  # metric and mode come from TuneConfig
    return OptunaSearch(metric=[o.metric for o in search.objectives], mode=[o.mode for o in search.objectives],
                        sampler=sampler)


def _scheduler(search: Search, epochs: int) -> Any:
    """ASHA or the median rule on ``training_iteration`` (one per reported epoch). In Pareto
    mode they stop on the first objective. ASHA's rungs lie within the first fold's epochs: at
    ``grace_period`` epochs and then every 4 times as many (ASHA's reduction factor, 4)."""
    if search.scheduler == "fifo":
        return None
    from ray.tune.schedulers import ASHAScheduler, MedianStoppingRule

    first = targets(search)[0]
    given = {"metric": first.metric, "mode": first.mode} if search.objectives else {}
    if search.scheduler == "asha":
        return ASHAScheduler(time_attr="training_iteration", max_t=epochs, grace_period=search.grace_period,
                             stop_last_trials=False, **given)
    return MedianStoppingRule(time_attr="training_iteration", grace_period=search.grace_period, **given)


def tune_config(recipe: Any, max_concurrent: int | None = None) -> Any:
    """The TuneConfig of a recipe's ``search:``: searcher, scheduler, samples, limits. One
    metric goes to Tune itself; Pareto objectives go to Optuna and (the first) to the scheduler.
    ``max_concurrent``: the trials at once, if fewer than ``search.max_concurrent`` fit (capacity.py)."""
    from ray import tune

    search = recipe.search
    single = search.objectives is None
    at_once = max_concurrent or search.max_concurrent
    return tune.TuneConfig(
        metric=search.metric if single else None, mode=search.mode if single else None,
        search_alg=_searcher(search, recipe.seed, at_once), scheduler=_scheduler(search, recipe.train.epochs),
        num_samples=search.num_samples,
        max_concurrent_trials=at_once if search.algorithm == "optuna" else None,
        time_budget_s=search.time_budget_s, trial_dirname_creator=trial_dirname,
        reuse_actors=True)  # each trial's work is a process of its own (work.py): nothing carries over


def _new_tuner(folder: SweepFolder, recipe: Any, shared: str | None, at_once: int, *, verbose: int) -> Any:
    from ray import tune

    search = recipe.search
    run_config = tune.RunConfig(name=folder.tune_dir.name, storage_path=str(folder.path), verbose=verbose,
                                failure_config=tune.FailureConfig(max_failures=search.max_failures))
    return tune.Tuner(_trainable(folder, search, folder.manifest["strict"], shared), param_space=param_space(search),
                      tune_config=tune_config(recipe, at_once), run_config=run_config)


def _execute(folder: SweepFolder, recipe: Any, make_tuner: Callable[[str | None, int], Any], *, quiet: bool,
             as_json: bool) -> int:
    """Connect, check that a trial fits (distributed trials), train once first if
    ``search.share_training``, run the trials, write the results."""
    search = recipe.search
    folder.set_status("running")
    started = time.monotonic()
    try:
        with contextlib.redirect_stdout(sys.stderr), ray_session(search.address) as target:
            at_once = concurrent_trials(recipe, target)  # before any trial: one that can never fit is an error
            shared = shared_training(folder, search) if search.share_training else None
            make_tuner(shared, at_once).fit()  # Tune's progress goes to stderr: stdout is for results (--json)
    except KeyboardInterrupt:
        folder.set_status("interrupted", "interrupted by the user (Ctrl-C)")
        raise
    except Exception as exc:  # e.g. no cluster: the folder must not say "running" with a dead pid
        folder.set_status("failed", printable(str(exc) or type(exc).__name__))
        raise
    out_of_time = search.time_budget_s is not None and time.monotonic() - started >= search.time_budget_s
    return summarize(folder, search, quiet=quiet, as_json=as_json, out_of_time=out_of_time)


def run_sweep(loaded: Any, *, artifacts: Path | None = None, strict: bool = False, quiet: bool = False,
              as_json: bool = False) -> int:
    """``gaitrun run`` of a recipe with ``search:``: a new sweep folder, every trial, the results."""
    folder = SweepFolder.create(loaded, artifacts=artifacts, strict=strict)
    if not quiet and not as_json:
        print(f"sweep folder: {folder.path}", flush=True)
    verbose = 0 if quiet or as_json else 1
    return _execute(folder, loaded.recipe, lambda shared, at_once: _new_tuner(folder, loaded.recipe, shared, at_once,
                                                                              verbose=verbose),
                    quiet=quiet, as_json=as_json)


def resume_sweep(path: str | Path, *, strict: bool = False, quiet: bool = False, as_json: bool = False) -> int:
    """``gaitrun resume SWEEP``: finished trials stay, unfinished and failed ones run on."""
    from ..recipe import load_recipe

    folder = SweepFolder.open(path)
    loaded = load_recipe(folder.file("recipe.yaml"))
    if not loaded.matches(folder.manifest["recipe_hash"]):
        raise UsageError(f"{folder.file('recipe.yaml')} no longer matches the sweep's recipe hash "
                         f"{folder.manifest['recipe_hash']}; start a new sweep instead of resuming")
    folder.manifest["strict"] = folder.manifest["strict"] or strict
    verbose = 0 if quiet or as_json else 1

    def make_tuner(shared: str | None, at_once: int) -> Any:
        from ray import tune

        if not tune.Tuner.can_restore(str(folder.tune_dir)):  # interrupted before Tune saved
            return _new_tuner(folder, loaded.recipe, shared, at_once, verbose=verbose)
        # Tune restores its searcher with the concurrency limit it had
        return tune.Tuner.restore(str(folder.tune_dir), trainable=_trainable(folder, loaded.recipe.search,
                                  folder.manifest["strict"], shared), resume_unfinished=True, resume_errored=True)

    return _execute(folder, loaded.recipe, make_tuner, quiet=quiet, as_json=as_json)
