"""A sweep's results, written to its folder: the trial table (``trials.csv`` and a rich table),
the best trial's recipe (``best_recipe.yaml``, runnable as is), plots of each search metric
against each searched key and, in Pareto mode, the Pareto-optimal trials (``pareto.json``,
a table and ``plots/pareto.png``)."""

from __future__ import annotations

import csv
import io
import json
import math
import sys
from pathlib import Path
from typing import Any

from ..atomic import write_json, write_text
from ..recipe.search import Objective, Search
from .folder import SweepFolder
from .space import targets, trial_values

# Tune's own bookkeeping in every result, and the per-epoch-only keys: not trial figures.
_NOT_METRICS = {"training_iteration", "time_total_s", "episodes_total", "timesteps_total", "node_ip",
                "hostname", "pid", "time_this_iter_s", "timestamp", "date", "time_since_restore",
                "timesteps_since_restore", "iterations_since_restore", "config", "checkpoint_dir_name",
                "done", "trial_id", "experiment_tag", "should_checkpoint", "run_done", "fold", "epoch",
                "work_pid"}
_TRIAL_INFO = ("failures", "duration_s", "cpu_s", "peak_rss_mb", "node_id")


def _status(tune_status: str, result: dict[str, Any], failures: int, max_failures: int) -> str:
    """done | stopped (early, by the scheduler or the time budget) | failed | unfinished.
    A trial with more failures than retries allowed has failed, whatever status Tune saved:
    Tune's experiment state can miss the last failure of a trial whose worker died."""
    if tune_status == "ERROR" or failures > max_failures:
        return "failed"
    if tune_status == "TERMINATED":
        return "done" if result.get("run_done") else "stopped"
    return "unfinished"


def _error_log(trial_path: str) -> str:
    """Tune's ``error.txt`` of the trial ("" if it never failed): a ``Failure # N`` header and
    a traceback appended for every failure."""
    error_file = Path(trial_path, "error.txt")
    return error_file.read_text(errors="replace") if error_file.is_file() else ""


def _error_line(log: str) -> str:
    """The last line of an error log: ``SomeError: message`` -> ``message``."""
    lines = [ln.strip() for ln in log.splitlines() if ln.strip()]
    last = lines[-1] if lines else ""
    name, sep, message = last.partition(": ")
    return message if sep and " " not in name else last


def trial_row(trial: Any, search: Search) -> dict[str, Any]:
    """One trial as a table row: id, status, its values, its last reported figures."""
    result = trial.last_result or {}
    log = _error_log(trial.path)
    failures = max(trial.num_failures, log.count("Failure # "))  # Tune's saved counter can lag
    status = _status(trial.status, result, failures, search.max_failures)
    row: dict[str, Any] = {"trial_id": trial.trial_id, "status": status, **trial_values(search, trial.config)}
    row.update({k: v for k, v in result.items() if k not in _NOT_METRICS and k not in row})
    row["failures"] = failures
    row["error"] = _error_line(log) if status == "failed" else ""
    return row


def trial_rows(folder: SweepFolder, search: Search) -> list[dict[str, Any]]:
    from ray.tune import ExperimentAnalysis

    analysis = ExperimentAnalysis(str(folder.tune_dir))
    return [trial_row(t, search) for t in sorted(analysis.trials, key=lambda t: t.trial_id)]


def columns(rows: list[dict[str, Any]], search: Search) -> list[str]:
    """Column order: id, status, searched keys, search metrics, trial info, other figures, paths."""
    front = ["trial_id", "status", *search.space, *(t.metric for t in targets(search))]
    if search.objectives:
        front.append("pareto")
    back = ["run_folder", "error"]
    seen = list(dict.fromkeys(k for row in rows for k in row))
    rest = sorted(k for k in seen if k not in front and k not in back and k not in _TRIAL_INFO)
    return [*dict.fromkeys([*front, *_TRIAL_INFO, *rest, *back])]


def _cell(value: Any, *, short: bool = False) -> str:
    """Table text: JSON for lists, full float precision in the CSV, 4 digits on screen."""
    if value is None:
        return ""
    if isinstance(value, (list, dict)):
        return json.dumps(value)
    if isinstance(value, float) and short:
        return f"{value:.4g}"
    return str(value)


def table_csv(rows: list[dict[str, Any]], cols: list[str]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(cols)
    writer.writerows([[_cell(row.get(c)) for c in cols] for row in rows])
    return buf.getvalue()


def print_table(rows: list[dict[str, Any]], search: Search, title: str) -> None:
    from rich.console import Console
    from rich.table import Table

    shown = ["trial_id", "status", *search.space, *(t.metric for t in targets(search))]
    shown += (["pareto"] if search.objectives else []) + list(_TRIAL_INFO) + ["error"]
    table = Table(title=title)
    for col in shown:
        table.add_column(col.replace("_", " "), overflow="fold", max_width=48 if col == "error" else None)
    colour = {"done": "green", "failed": "red", "stopped": "yellow", "not_run": "yellow", "unfinished": "yellow"}
    for row in rows:
        cells = [_cell(row.get(c), short=True)[:12 if c == "node_id" else None] for c in shown]
        cells[1] = f"[{colour[row['status']]}]{cells[1]}[/]"
        table.add_row(*cells)
    console = Console(stderr=True)
    if not console.is_terminal:
        console.width = 200  # a log or CI: no terminal width to fit
    console.print(table)


def _value(row: dict[str, Any], metric: str) -> float | None:
    v = row.get(metric)
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) else None


def best_row(rows: list[dict[str, Any]], target: Objective) -> dict[str, Any] | None:
    """The finished trial with the best ``target.metric`` (None when no trial finished)."""
    scored = [r for r in rows if r["status"] == "done" and _value(r, target.metric) is not None]
    if not scored:
        return None
    pick = max if target.mode == "max" else min
    return pick(scored, key=lambda r: _value(r, target.metric))


def dominates(a: list[float], b: list[float], modes: list[str]) -> bool:
    """``a`` is at least as good as ``b`` in every objective and better in one."""
    signs = [1.0 if m == "max" else -1.0 for m in modes]
    better = [s * (x - y) for s, x, y in zip(signs, a, b, strict=True)]
    return all(d >= 0 for d in better) and any(d > 0 for d in better)


def scored(rows: list[dict[str, Any]], objectives: list[Objective]) -> dict[int, list[float]]:
    """Row index -> objective values, for the finished rows with a finite value of each."""
    points = {i: [_value(r, o.metric) for o in objectives] for i, r in enumerate(rows) if r["status"] == "done"}
    return {i: p for i, p in points.items() if None not in p}


def pareto_front(rows: list[dict[str, Any]], objectives: list[Objective]) -> list[int]:
    """Indices of the scored rows that no other scored row dominates."""
    modes = [o.mode for o in objectives]
    points = scored(rows, objectives)
    return [i for i, p in points.items() if not any(dominates(q, p, modes) for j, q in points.items() if j != i)]


def write_best_recipe(folder: SweepFolder, row: dict[str, Any], target: Objective) -> Path:
    """The best trial's resolved recipe (no ``search:``), with a comment saying where from."""
    text = folder.file(row["run_folder"], "recipe.yaml").read_text()
    header = (f"# best trial {row['trial_id']} of sweep {folder.path.name}: "
              f"{target.metric} = {row[target.metric]:.6g} ({target.mode})\n")
    path = folder.file("best_recipe.yaml")
    write_text(path, header + text)
    return path


def write_pareto(folder: SweepFolder, rows: list[dict[str, Any]], objectives: list[Objective]) -> list[dict]:
    """Mark each row's ``pareto`` flag; write pareto.json and the scatter plot; return the front."""
    from .plots import plot_pareto

    front, points = pareto_front(rows, objectives), scored(rows, objectives)
    for i, row in enumerate(rows):
        row["pareto"] = (i in front) if i in points else None
    members = sorted((rows[i] for i in front), key=lambda r: _value(r, objectives[0].metric))
    payload = {"objectives": [o.model_dump() for o in objectives],
               "front": [{k: v for k, v in r.items() if k != "error"} for r in members],
               "dominated": [rows[i]["trial_id"] for i in points if i not in front]}
    write_json(folder.file("pareto.json"), payload)
    plot_pareto(rows, front, objectives, folder.file("plots", "pareto.png"))
    return members


def write_results(folder: SweepFolder, search: Search, *, out_of_time: bool = False) -> dict[str, Any]:
    """Every result file of the sweep; returns what the CLI prints. ``out_of_time``: the time
    budget ended the sweep, so trials still waiting are ``not_run`` rather than unfinished."""
    from .plots import plot_metric_vs_keys

    rows = trial_rows(folder, search)
    for row in rows:
        if out_of_time and row["status"] == "unfinished":
            row["status"] = "not_run"
    front = write_pareto(folder, rows, search.objectives) if search.objectives else None
    cols = columns(rows, search)
    write_text(folder.file("trials.csv"), table_csv(rows, cols))
    plots = plot_metric_vs_keys(rows, search, folder.file("plots"))
    target = targets(search)[0]
    best = best_row(rows, target)
    recipe = write_best_recipe(folder, best, target) if best else None
    counts = {s: sum(r["status"] == s for r in rows) for s in ("done", "stopped", "failed", "not_run", "unfinished")}
    return {"rows": rows, "best": best, "best_recipe": recipe, "front": front, "counts": counts, "plots": plots}


def summarize(folder: SweepFolder, search: Search, *, quiet: bool, as_json: bool, out_of_time: bool = False) -> int:
    """Write the results, mark the sweep done or interrupted, tell the user; the exit code."""
    out = write_results(folder, search, out_of_time=out_of_time)
    counts, best = out["counts"], out["best"]
    folder.set_status("interrupted" if counts["unfinished"] else "done")
    ok = counts["done"] > 0 and not counts["unfinished"]
    if as_json:
        payload = {"ok": ok, "status": folder.manifest["status"], "sweep_folder": str(folder.path), "counts": counts,
                   "best": best, "best_recipe": str(out["best_recipe"]) if out["best_recipe"] else None,
                   "pareto": out["front"], "plots": [str(p) for p in out["plots"]], "trials": out["rows"],
                   "shared_training": folder.manifest.get("shared_training")}
        sys.stdout.write(json.dumps(payload, indent=2, default=str) + "\n")
        return 0 if ok else 1
    if not quiet:
        print_table(out["rows"], search, f"sweep {folder.path.name}")
        if out["front"] is not None:
            print_table(out["front"], search, "Pareto-optimal trials")
    _print_outcome(folder, out, search)
    return 0 if ok else 1


def _print_outcome(folder: SweepFolder, out: dict[str, Any], search: Search) -> None:
    counts, best = out["counts"], out["best"]
    summary = ", ".join(f"{n} {s}" for s, n in counts.items() if n)
    shared = folder.manifest.get("shared_training")
    if shared:
        print(f"shared training (once, for every trial): {shared['cpu_s']:.0f} CPU s, "
              f"{shared['duration_s']:.0f} s, {folder.file(shared['run_folder'])}")
    if counts["unfinished"]:
        sys.stderr.write(f"gaitrun: sweep interrupted ({summary}); continue with 'gaitrun resume {folder.path}'\n")
    elif best is None:
        sys.stderr.write(f"gaitrun: no trial finished ({summary}); see {folder.file('trials.csv')}\n")
    else:
        target = targets(search)[0]
        print(f"sweep finished ({summary}): {folder.path}\nbest trial {best['trial_id']}: "
              f"{target.metric} = {best[target.metric]:.4g}; its recipe: {out['best_recipe']}")
