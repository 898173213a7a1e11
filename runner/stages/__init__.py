"""The stage dispatcher: plan which stages a recipe needs and run them in order.

A stage is a module ``gaitrun.stages.<name>`` with ``run(ctx) -> dict | None``. It reads
what earlier stages left in the run folder (so a resumed run needs no in-memory state),
writes its own files atomically, and may return ``{"status": "deferred", "reason": ...}``.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any

from ..callbacks import Callback, CallbackList
from ..errors import GaitrunError, StageError
from ..registry import Registries
from ..runfolder import RunFolder

ORDER = ("data", "train", "prune", "export", "bench", "report")


@dataclass
class RunContext:
    """What a stage gets: the validated recipe, its run folder, the registries, hooks and
    a scratch dict for state that may be rebuilt from the folder after a resume."""

    loaded: Any  # LoadedRecipe
    folder: RunFolder
    regs: Registries
    callbacks: Callback = field(default_factory=CallbackList)
    strict: bool = False
    quiet: bool = False  # print nothing but errors (--quiet, --json, sweep trials)
    state: dict[str, Any] = field(default_factory=dict)

    @property
    def recipe(self) -> Any:
        return self.loaded.recipe


def plan(recipe: Any) -> list[str]:
    """The stages a recipe runs, in order."""
    wanted = {"data": True, "train": True, "prune": recipe.prune is not None,
              "export": recipe.deploy is not None, "bench": recipe.deploy is not None, "report": True}
    return [s for s in ORDER if wanted[s]]


def describe(recipe: Any) -> list[dict[str, Any]]:
    """Each planned stage with the resolved recipe keys that drive it (for ``gaitrun plan``)."""
    dumped = recipe.model_dump(mode="json")  # nulls shown: null may mean "off", not the default
    keys = {"data": ["data", "augment"], "train": ["model", "train", "cv", "evaluate"],
            "prune": ["prune"], "export": ["deploy"], "bench": ["deploy"], "report": []}
    return [{"stage": s, "config": {k: dumped[k] for k in keys[s] if k in dumped}} for s in plan(recipe)]


def debug() -> bool:
    """``GAITRUN_DEBUG=1``: internal errors are re-raised with their traceback (maintainers)."""
    import os

    return os.environ.get("GAITRUN_DEBUG", "") not in ("", "0")


def _internal_error(folder: RunFolder, name: str, exc: BaseException) -> StageError:
    """Write the traceback to ``traceback.txt`` in the run folder; the one-line error names it."""
    import traceback

    folder.write_text("traceback.txt", "".join(traceback.format_exception(exc)))
    return StageError(name, f"{type(exc).__name__}: {exc} (a bug: traceback in {folder.path}/traceback.txt; "
                      f"report it with that file, or rerun with GAITRUN_DEBUG=1; after a fix: "
                      f"'gaitrun resume {folder.path}')")


def _run_one(ctx: RunContext, name: str) -> str:
    folder, cb = ctx.folder, ctx.callbacks
    folder.set_status(name, "running")
    cb.on_stage_start(name)
    try:
        result = importlib.import_module(f"gaitrun.stages.{name}").run(ctx) or {}
    except GaitrunError as exc:
        folder.set_status(name, "failed", str(exc))
        cb.on_stage_end(name, "failed", str(exc))
        raise
    except Exception as exc:
        reason = f"{type(exc).__name__}: {exc}"
        folder.set_status(name, "failed", reason)
        cb.on_stage_end(name, "failed", reason)
        if debug():
            raise
        raise _internal_error(folder, name, exc) from exc
    status = result.get("status", "done")
    folder.set_status(name, status, result.get("reason"))
    cb.on_stage_end(name, status, result.get("reason"))
    return status


def run_stages(ctx: RunContext) -> None:
    """Run every unfinished stage in order; a failing stage raises."""
    ctx.callbacks.on_run_start(ctx.folder, ctx.folder.pending_stages())
    for name in ctx.folder.pending_stages():
        _run_one(ctx, name)
    ctx.callbacks.on_run_end("done")
