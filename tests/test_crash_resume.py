"""Crash safety: ``gaitrun run`` killed with SIGKILL at chosen moments -- during data caching,
mid-epoch, between folds, during pruning, during export -- then ``gaitrun resume`` must finish
the run into a complete, valid folder without redoing the stages that had finished.

The moment is detected by polling the run folder (manifest statuses, checkpoint.json,
folds/*/metrics.json, export/) and, for a "random" moment, followed by a seeded random delay.
``bench/kill_resume.py`` reuses these helpers for kills at random times over a whole run.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

NAME = "digits_crash"
RECIPE = f"""\
name: {NAME}
seed: 5
data: {{adapter: digits, modality: rgb, clip: {{frames: 1, size: [8, 8]}}, cache: disk, max_samples: 600}}
model: {{arch: simple_cnn, params: {{width: 0.25}}}}
train: {{epochs: 2, batch_size: 32, optimizer: {{name: adam, lr: 0.003}}, tensorboard: false}}
cv: {{scheme: stratified_kfold, folds: 2}}
evaluate: {{metrics: [accuracy], plots: false}}
prune: {{percentile: 30, finetune: {{epochs: 1}}}}
deploy: {{target: onnx, precision: fp32, batch_sizes: [1], bench: {{warmup: 1, iterations: 3}}}}
"""
STAGES = ("data", "train", "prune", "export", "bench", "report")
TIMEOUT_S = 900


# --- running and killing ---------------------------------------------------------------------
def gaitrun(*args: str, cwd: Path, cache: Path) -> subprocess.Popen:
    """``gaitrun ARGS`` in ``cwd`` with its data cache in ``cache``."""
    exe = Path(sys.executable).parent / "gaitrun"
    env = {**os.environ, "GAITRUN_CACHE": str(cache)}
    return subprocess.Popen([str(exe), *args], cwd=cwd, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)


def start_run(workdir: Path, cache: Path) -> subprocess.Popen:
    recipe = workdir / "recipe.yaml"
    recipe.write_text(RECIPE)
    return gaitrun("run", str(recipe), "--artifacts", "art", "--quiet", cwd=workdir, cache=cache)


def run_folder(workdir: Path) -> Path | None:
    found = sorted((workdir / "art" / NAME).glob("*/manifest.json"))
    return found[0].parent if found else None


def statuses(run: Path | None) -> dict[str, str]:
    """Stage -> status from the manifest ({} before the run folder exists)."""
    if run is None or not (run / "manifest.json").is_file():
        return {}
    return {s["name"]: s["status"] for s in json.loads((run / "manifest.json").read_text())["stages"]}


def stage_hit(run: Path | None) -> str:
    """The stage a kill interrupted: the one 'running', else the first pending one."""
    st = statuses(run)
    if not st:
        return "startup"
    return next((n for n in STAGES if st.get(n) == "running"), next((n for n in STAGES if st.get(n) == "pending"), "end"))


def kill(proc: subprocess.Popen) -> None:
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate()


def resume(run: Path, cwd: Path, cache: Path) -> tuple[int, str]:
    proc = gaitrun("resume", str(run), "--quiet", cwd=cwd, cache=cache)
    _, err = proc.communicate(timeout=TIMEOUT_S)
    return proc.returncode, err


# --- what a kill must not break -------------------------------------------------------------
def owner(rel: str) -> str:
    """The stage that writes the run-folder file ``rel``."""
    if rel in ("log.txt", "traceback.txt"):
        return "log"  # appended to by every stage that runs, resumed ones included
    if rel in ("data.json", "skipped.json"):
        return "data"
    if rel in ("folds.json", "metrics.json") or rel.startswith("folds/") or rel in (
            "plots/learning_curves.png", "plots/confusion_matrix.png"):
        return "train"
    if rel.startswith("pruned/") or rel == "plots/filters_kept.png":
        return "prune"
    if rel.startswith("export/"):
        return "export"
    if rel in ("bench.json", "plots/bench.png", "plots/tradeoff.png"):
        return "bench"
    return "report" if rel == "report.md" else "create"


def finished_fold_files(run: Path) -> set[str]:
    """Files of folds (trained or pruned) that finished before a kill inside their stage."""
    out = set()
    for metrics in [*run.glob("folds/*/metrics.json"), *run.glob("pruned/folds/*/metrics.json")]:
        for name in ("metrics.json", "model.keras"):
            out.add((metrics.parent / name).relative_to(run).as_posix())
    return out


def frozen_files(run: Path) -> dict[str, int]:
    """mtime (ns) of every file a resume must leave alone: the recipe, the files of finished
    stages and of finished folds."""
    done = {n for n, s in statuses(run).items() if s == "done"} | {"create"}
    keep = finished_fold_files(run)
    out = {}
    for path in run.rglob("*"):
        rel = path.relative_to(run).as_posix()
        if path.is_file() and not is_temporary(path, run) and rel != "manifest.json" and (owner(rel) in done or rel in keep):
            out[rel] = path.stat().st_mtime_ns
    return out


def is_temporary(path: Path, run: Path) -> bool:
    return any(p.startswith(".") and p.endswith(".tmp") for p in path.relative_to(run).parts)


def problems(run: Path, frozen: dict[str, int]) -> list[str]:
    """Everything wrong with a resumed run folder ([] = complete and valid)."""
    out = [f"stage {n} is {s}" for n, s in statuses(run).items() if s != "done"]
    out += [f"temporary file left: {p.relative_to(run)}" for p in run.rglob("*.tmp") if is_temporary(p, run)]
    out += [f"{rel} was rewritten or removed" for rel, mtime in frozen.items()
            if not (run / rel).is_file() or (run / rel).stat().st_mtime_ns != mtime]
    for rel in ("report.md", "bench.json", "metrics.json", "pruned/pruning.json", "export/export.json",
                "export/model.fp32.onnx", "pruned/model.keras", "folds/0/model.keras", "folds/1/model.keras"):
        if not (run / rel).is_file():
            out.append(f"{rel} is missing")
    out += [f"resume checkpoint left: {p.relative_to(run)}" for p in run.rglob("checkpoint-*.keras")]
    for path in run.rglob("*.json"):
        try:
            json.loads(path.read_text())
        except ValueError as exc:
            out.append(f"{path.relative_to(run)} is not valid JSON: {exc}")
    out += _unloadable(run)
    return out


def _unloadable(run: Path) -> list[str]:
    """Keras models that do not load with safe_mode, ONNX models onnxruntime refuses."""
    import onnxruntime as ort

    from gaitrun.keras_io import load_model

    out = []
    for path in run.rglob("*.keras"):
        if path.is_file() and not is_temporary(path, run):
            try:
                load_model(path)
            except Exception as exc:  # any failure to load is what we report
                out.append(f"{path.relative_to(run)} does not load: {exc}")
    for path in run.rglob("*.onnx"):
        if not is_temporary(path, run):
            try:
                ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
            except Exception as exc:
                out.append(f"{path.relative_to(run)} does not load in onnxruntime: {exc}")
    return out


# --- the moments -----------------------------------------------------------------------------
@dataclass(frozen=True)
class Moment:
    """When to kill: once ``trigger(run)`` holds, after ``delay(run, rng)`` seconds."""

    name: str
    trigger: Callable[[Path], bool]
    delay: Callable[[Path, random.Random], float]
    stage: str  # the stage the kill must interrupt


def _checkpoint_epoch_time(run: Path) -> float:
    rows = json.loads((run / "folds/0/checkpoint.json").read_text())["history"]
    return float(rows[-1]["epoch_time_s"])


MOMENTS = [
    # The digits data stage lasts ~1 s on a fast 2-core machine (~0.9 s listing and loading, then
    # ~0.1 s writing the store), so the delay stays well inside it.
    Moment("data caching", lambda r: statuses(r).get("data") == "running", lambda r, rng: rng.uniform(0.0, 0.4), "data"),
    Moment("mid-epoch", lambda r: (r / "folds/0/checkpoint.json").is_file(),
           lambda r, rng: rng.uniform(0.1, 0.6) * _checkpoint_epoch_time(r), "train"),
    Moment("between folds", lambda r: (r / "folds/0/metrics.json").is_file(), lambda r, rng: 0.0, "train"),
    Moment("pruning", lambda r: statuses(r).get("prune") == "running", lambda r, rng: rng.uniform(0.5, 4.0), "prune"),
    Moment("export", lambda r: any((r / "export").glob(".*.tmp")), lambda r, rng: rng.uniform(0.0, 0.3), "export"),
]


# --- the test --------------------------------------------------------------------------------
def _wait_and_kill(proc: subprocess.Popen, moment: Moment, workdir: Path, rng: random.Random) -> Path:
    """Poll the run folder until ``moment`` (plus its random delay), then kill ``proc``."""
    deadline = time.time() + TIMEOUT_S
    while proc.poll() is None and time.time() < deadline:
        run = run_folder(workdir)
        try:
            if run is not None and moment.trigger(run):
                time.sleep(moment.delay(run, rng))
                break
        except (OSError, ValueError):  # a file seen mid-rename: look again
            pass
        time.sleep(0.02)
    assert proc.poll() is None, f"the run ended before the moment '{moment.name}': {proc.stderr.read()}"
    kill(proc)
    run = run_folder(workdir)
    assert run is not None
    return run


@pytest.mark.slow
def test_one_run_survives_a_kill_at_every_moment(tmp_path: Path) -> None:
    """One run killed five times -- during data caching, mid-epoch, between folds, during
    pruning, during export -- each time resumed; in the end the folder is complete and valid
    and nothing finished before a kill was redone."""
    cache, rng = tmp_path / "cache", random.Random("kills")
    proc = start_run(tmp_path, cache)
    frozen: dict[str, int] = {}
    for moment in MOMENTS:
        run = _wait_and_kill(proc, moment, tmp_path, rng)
        assert stage_hit(run) == moment.stage, f"{moment.name}: the kill hit stage {stage_hit(run)}"
        frozen.update(frozen_files(run))
        proc = gaitrun("resume", str(run), "--quiet", cwd=tmp_path, cache=cache)
    _, err = proc.communicate(timeout=TIMEOUT_S)
    assert proc.returncode == 0, err
    assert problems(run, frozen) == []
    assert not list(cache.rglob(".*.tmp")), "a temporary file was left in the data cache"
