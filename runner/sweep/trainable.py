"""One sweep trial = one ordinary gaitrun run, inside a Ray worker process.

The trial loads the sweep's ``recipe.yaml`` with its sampled values as ``--set`` overrides,
makes (or, after an interruption or a retry, reopens) a run folder under
``<sweep>/trials/<trial id>/`` and runs the stages with the same ``RunContext`` and
``run_stages`` as ``gaitrun run``. A callback reports every epoch to Tune (so ASHA and the
median rule can stop weak trials); the end of the run reports the run's final figures, also
saved as ``trials/<trial id>/result.json``. The run folder is the trial's checkpoint (per-epoch
Keras checkpoints and the stage manifest): a resumed sweep continues it, and a trial that had
finished reports its saved result again instead of running.
"""

from __future__ import annotations

import csv
import math
import os
import resource
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..atomic import read_json, write_json
from ..callbacks import Callback, CallbackList
from ..errors import GaitrunError
from ..recipe.search import Search
from .space import targets, trial_overrides


class TrialError(RuntimeError):
    """A trial's run failed; the message is the gaitrun error's traceback, whose last line
    (``DataError: <file>: <what is wrong>``) the trial table shows."""


def epoch_result(logs: dict[str, float]) -> dict[str, float]:
    """Keras epoch logs for Tune: training figures that have a ``val_`` twin get ``train_``,
    so ``accuracy`` names the evaluated accuracy (as in metrics.json), not the training one."""
    return {f"train_{k}" if f"val_{k}" in logs else k: float(v) for k, v in logs.items()}


class TuneReporter(Callback):
    """Reports each epoch to Tune. A search metric that is only computed after training
    (``accuracy``) is reported per epoch as its Keras twin (``val_accuracy``); when a metric
    has no per-epoch value (``rank1_nm``, ``latency_ms_b1``) only the final report carries it."""

    def __init__(self, metrics: list[str], info: Callable[[], dict[str, Any]]):
        self.metrics = metrics
        self.info = info

    def on_epoch_end(self, fold: str, epoch: int, logs: dict[str, float]) -> None:
        from ray import tune

        result = epoch_result(logs)
        for name in self.metrics:
            if name not in result and f"val_{name}" in result:
                result[name] = result[f"val_{name}"]
        if all(name in result for name in self.metrics):
            tune.report({**result, "fold": fold, "epoch": epoch + 1, **self.info()})


def _numbers(mapping: dict[str, Any], prefix: str = "") -> dict[str, float]:
    return {f"{prefix}{k}": float(v) for k, v in mapping.items()
            if isinstance(v, (int, float)) and not isinstance(v, bool)}


def last_epochs(run: Path) -> dict[str, float]:
    """The last epoch's figures of every fold (``folds/*/history.csv``), averaged over folds."""
    rows = []
    for history in sorted(run.glob("folds/*/history.csv")):
        with history.open(newline="") as fh:
            last = list(csv.DictReader(fh))[-1:]
        rows += [{k: float(v) for k, v in row.items() if k != "epoch" and v not in ("", None)} for row in last]
    keys = {k for row in rows for k in row}
    mean = {k: sum(r[k] for r in rows if k in r) / sum(1 for r in rows if k in r) for k in keys}
    return epoch_result(mean)


def _latency(run: Path) -> dict[str, Any]:
    """p50 latency per batch size of the exported model's backend (Keras when none)."""
    if not (run / "bench.json").is_file():
        return {}
    results = read_json(run / "bench.json")["results"]
    exported = [r for r in results if not r["backend"].startswith("keras")]
    rows = exported or results
    backend = rows[0]["backend"]
    out: dict[str, Any] = {f"latency_ms_b{r['batch_size']}": r["p50_ms"] for r in rows if r["backend"] == backend}
    return {**out, "latency_backend": backend}


def _deployment(run: Path) -> dict[str, Any]:
    """Pruned model's figures and size (``pruned/pruning.json``) and the exported model's score."""
    out: dict[str, Any] = {}
    pruning = run / "pruned" / "pruning.json"
    if pruning.is_file():
        info = read_json(pruning)
        out.update(_numbers(info["after_finetune"]["mean"], "pruned_"))
        totals = info["report"]["totals"]
        out.update({"params": totals["params"]["after"], "flops": totals["flops"]["after"]})
    export = run / "export" / "export.json"
    parity = read_json(export).get("parity") if export.is_file() else None
    if parity:
        out[f"exported_{parity['metric']}"] = parity["exported"]
    return out


def _params(run: Path, best_fold: str) -> int:
    from ..keras_io import load_model

    return int(load_model(run / "folds" / best_fold / "model.keras").count_params())


def final_metrics(run: Path) -> dict[str, Any]:
    """A finished run's figures, flat: the last epochs, the folds' mean (``metrics.json``
    summary), ``test_*``, ``pruned_*``, ``params``, ``exported_*`` and ``latency_ms_b<batch>``."""
    from ..stages.train import headline

    metrics = read_json(run / "metrics.json")
    out: dict[str, Any] = {**last_epochs(run), **_numbers(metrics["summary"]["mean"])}
    if "test" in metrics:
        out.update(_numbers(headline(metrics["test"]), "test_"))
    out.update(_deployment(run))
    if "params" not in out:
        out["params"] = _params(run, metrics["best_fold"])
    return {**out, **_latency(run)}


def peak_rss_mb() -> float:
    """This process's peak resident memory: the trial's, as every trial gets a fresh worker."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS
    return round(peak / (1024 * 1024 if os.uname().sysname == "Darwin" else 1024), 1)


def trial_info(run: Path, sweep: Path, started: float) -> dict[str, Any]:
    """Where and how the trial runs: its run folder, Ray node, peak memory and time so far."""
    import ray

    return {"run_folder": str(run.relative_to(sweep)), "node_id": ray.get_runtime_context().get_node_id(),
            "peak_rss_mb": peak_rss_mb(), "duration_s": round(time.perf_counter() - started, 2)}


def _limit_threads(cpus: float) -> None:
    """TensorFlow uses the trial's CPU share (search.resources.cpu), not every core. Set
    before TensorFlow starts (each trial is a fresh worker process), read when it does."""
    n = str(max(1, math.ceil(cpus)))
    os.environ["TF_NUM_INTRAOP_THREADS"] = os.environ["TF_NUM_INTEROP_THREADS"] = n


def _run_folder(trial_dir: Path, loaded: Any) -> Any:
    """The trial's run folder: the one an earlier attempt left, else a new one."""
    from ..runfolder import RunFolder
    from ..stages import plan

    for manifest in sorted(trial_dir.glob("*/manifest.json"), reverse=True):
        folder = RunFolder.open(manifest.parent)
        if folder.manifest["recipe_hash"] == loaded.hash:
            return folder
    return RunFolder.create(loaded, plan(loaded.recipe), parent=trial_dir)


def _run(folder: Any, loaded: Any, reporter: Callback, strict: bool) -> None:
    from ..registry import registries
    from ..stages import RunContext, run_stages

    if folder.is_finished():
        return  # finished before the sweep was interrupted: not run again
    ctx = RunContext(loaded=loaded, folder=folder, regs=registries(), callbacks=CallbackList([reporter]),
                     strict=strict, quiet=True)
    if run_stages(ctx) != "done":
        stopped = next(s for s in folder.manifest["stages"] if s["status"] == "not_implemented")
        raise TrialError(f"run stopped at stage '{stopped['name']}': {stopped['reason']}")


def _run_and_score(config: dict[str, Any], trial_dir: Path, sweep: Path, search: Search, strict: bool,
                   started: float) -> dict[str, Any]:
    """The trial's run (new, or resumed after an interruption or a failure) and its final result."""
    from ..recipe import load_recipe
    from ..stages.train import release

    names = [t.metric for t in targets(search)]
    try:
        loaded = load_recipe(sweep / "recipe.yaml", trial_overrides(search, config))
        folder = _run_folder(trial_dir, loaded)
        info = lambda: trial_info(folder.path, sweep, started)  # noqa: E731
        _run(folder, loaded, TuneReporter(names, info), strict)
        final = final_metrics(folder.path)
    except GaitrunError as exc:  # Ray copies exceptions by their args, which gaitrun's errors do not allow
        raise TrialError("".join(traceback.format_exception(exc)).rstrip()) from None
    finally:
        if "keras" in sys.modules:
            release()  # keras.backend.clear_session() and gc: the worker gives its memory back
    missing = [name for name in names if name not in final]
    if missing:
        raise TrialError(f"the run has no metric {', '.join(missing)}; the search metrics must be among: "
                         f"{', '.join(sorted(final))}")
    return {**final, **info(), "run_done": True}


def run_trial(config: dict[str, Any], *, sweep_dir: str, search: Search, workdir: str, strict: bool) -> None:
    """Tune's function trainable: run the sweep's recipe with ``config`` applied. A trial that
    finished before the sweep was interrupted reports its saved result again (``result.json``)."""
    from ray import tune

    started = time.perf_counter()
    sweep = Path(sweep_dir)
    trial_dir = sweep / "trials" / tune.get_context().get_trial_id()
    if (trial_dir / "result.json").is_file():
        tune.report(read_json(trial_dir / "result.json"))
        return
    if os.path.isdir(workdir):
        os.chdir(workdir)  # relative data paths mean what they meant where the sweep started
    _limit_threads(search.resources.cpu)
    result = _run_and_score(config, trial_dir, sweep, search, strict, started)
    write_json(trial_dir / "result.json", result)
    tune.report(result)
