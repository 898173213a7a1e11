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


class StageNotImplemented(Exception):
    """Raised by a stage whose implementation has not landed yet (names the issue)."""


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
    dumped = recipe.model_dump(mode="json", exclude_none=True)
    keys = {"data": ["data", "augment"], "train": ["model", "train", "cv", "evaluate"],
            "prune": ["prune"], "export": ["deploy"], "bench": ["deploy"], "report": []}
    return [{"stage": s, "config": {k: dumped[k] for k in keys[s] if k in dumped}} for s in plan(recipe)]


def _run_one(ctx: RunContext, name: str) -> str:
    folder, cb = ctx.folder, ctx.callbacks
    folder.set_status(name, "running")
    cb.on_stage_start(name)
    try:
        result = importlib.import_module(f"gaitrun.stages.{name}").run(ctx) or {}
    except StageNotImplemented as exc:
        folder.set_status(name, "not_implemented", str(exc))
        cb.on_stage_end(name, "not_implemented", str(exc))
        return "not_implemented"
    except GaitrunError as exc:
        folder.set_status(name, "failed", str(exc))
        cb.on_stage_end(name, "failed", str(exc))
        raise
    except Exception as exc:
        reason = f"{type(exc).__name__}: {exc}"
        folder.set_status(name, "failed", reason)
        cb.on_stage_end(name, "failed", reason)
        raise StageError(name, f"{reason} (details in {folder.path}/manifest.json; fix and run "
                         f"'gaitrun resume {folder.path}')") from exc
    status = result.get("status", "done")
    folder.set_status(name, status, result.get("reason"))
    cb.on_stage_end(name, status, result.get("reason"))
    return status


def run_stages(ctx: RunContext) -> str:
    """Run every unfinished stage; returns "done" or "stopped" (a stage not implemented)."""
    ctx.callbacks.on_run_start(ctx.folder, ctx.folder.pending_stages())
    for name in ctx.folder.pending_stages():
        if _run_one(ctx, name) == "not_implemented":
            ctx.callbacks.on_run_end("stopped")
            return "stopped"
    ctx.callbacks.on_run_end("done")
    return "done"
