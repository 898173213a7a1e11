"""The ``gaitrun`` command line. Start-up stays light: argparse only; pydantic, ruamel and
the plugin registries load when a command needs them, TensorFlow only when a stage runs.

Exit codes: 0 success, 1 a run failed, 2 bad input (recipe, flag, data file).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from .errors import GaitrunError, RecipeError, UsageError

COMMANDS = ("run", "validate", "plan", "plugins", "schema", "resume", "data", "export", "bench", "prune", "engine")


class _Parser(argparse.ArgumentParser):
    """argparse that reports bad flags as one line (exit 2), not a usage dump."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{self.prog}: error: {message} (see '{self.prog} --help')")


def _common(p: argparse.ArgumentParser, *, overrides: bool = True) -> None:
    if overrides:
        p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                       help="override a recipe key, e.g. --set train.epochs=5 (value read as YAML)")
    p.add_argument("--quiet", action="store_true", help="print only errors and the final result")
    p.add_argument("--json", action="store_true", help="machine-readable output on stdout")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="gaitrun", description="Declarative deep-learning experiments on gait, "
                     "activity, video and image data. 'gaitrun RECIPE' is 'gaitrun run RECIPE'.")
    from . import __version__

    parser.add_argument("--version", action="version", version=f"gaitrun {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    p = sub.add_parser("run", help="run a recipe into a new run folder")
    p.add_argument("recipe", type=Path)
    p.add_argument("--artifacts", type=Path, default=None, help="root of run folders (default artifacts/)")
    p.add_argument("--strict", action="store_true", help="deferred stages (e.g. a TensorRT build "
                   "without a GPU) are errors")
    _common(p)
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("validate", help="check recipes without running them")
    p.add_argument("recipes", type=Path, nargs="+")
    _common(p)
    p.set_defaults(func=cmd_validate)

    p = sub.add_parser("plan", help="show the stages a recipe would run, with resolved settings")
    p.add_argument("recipe", type=Path)
    _common(p)
    p.set_defaults(func=cmd_plan)

    p = sub.add_parser("plugins", help="list plugins, their params and defaults")
    p.add_argument("family", nargs="?", help="datasets, architectures, augmentations, cv, pruners, exporters")
    _common(p, overrides=False)
    p.set_defaults(func=cmd_plugins)

    p = sub.add_parser("schema", help="print the JSON Schema of recipes (for editors)")
    p.add_argument("--out", type=Path, help="write to this file instead of stdout")
    p.set_defaults(func=cmd_schema, quiet=False, json=True)

    p = sub.add_parser("resume", help="continue an interrupted run (from its first unfinished stage) or sweep")
    p.add_argument("run_folder", type=Path)
    p.add_argument("--strict", action="store_true")
    _common(p, overrides=False)
    p.set_defaults(func=cmd_resume)

    for name, text in (("export", "export a finished run's model again (deploy section of its recipe)"),
                       ("bench", "benchmark a finished run's deployed model on every backend here")):
        p = sub.add_parser(name, help=text)
        p.add_argument("run_folder", type=Path)
        p.add_argument("--strict", action="store_true")
        _common(p, overrides=False)
        p.set_defaults(func=cmd_rerun, stage=name)

    p = sub.add_parser("prune", help="prune a finished run's trained models again, without retraining")
    p.add_argument("run_folder", type=Path)
    p.add_argument("--percentile", type=float, required=True, help="0 <= P < 100")
    p.add_argument("--artifacts", type=Path, default=None)
    p.add_argument("--strict", action="store_true")
    _common(p)
    p.set_defaults(func=cmd_prune)

    p = sub.add_parser("engine", help="TensorRT engine tools")
    engine_sub = p.add_subparsers(dest="engine_command", metavar="ENGINE_COMMAND", required=True, parser_class=_Parser)
    b = engine_sub.add_parser("build", help="build model.engine from a TensorRT bundle on this (GPU) machine")
    b.add_argument("bundle", type=Path)
    b.add_argument("--workspace-mb", type=int, default=None)
    _common(b, overrides=False)
    b.set_defaults(func=cmd_engine_build)

    from .data.cli import add_data_commands

    add_data_commands(sub, _common)
    return parser


# --- output helpers ---------------------------------------------------------------------------

def _emit_json(payload: Any) -> None:
    sys.stdout.write(json.dumps(payload, indent=2, default=str) + "\n")


def _error(exc: GaitrunError, *, as_json: bool) -> int:
    from .errors import printable

    lines = [str(p) for p in exc.problems] if isinstance(exc, RecipeError) else [printable(str(exc))]
    if as_json:
        _emit_json({"ok": False, "exit_code": exc.exit_code, "errors": lines})
    else:
        for line in lines:
            plain = isinstance(exc, (RecipeError, UsageError))
            sys.stderr.write(f"{line}\n" if plain else f"gaitrun: error: {line}\n")
    return exc.exit_code


# --- commands ---------------------------------------------------------------------------------

def cmd_validate(args: argparse.Namespace) -> int:
    from .recipe import load_recipe

    results, failed = [], []
    for path in args.recipes:
        try:
            loaded = load_recipe(path, args.overrides)
            results.append({"recipe": str(path), "ok": True, "hash": loaded.hash})
        except RecipeError as exc:
            failed.append(exc)
            results.append({"recipe": str(path), "ok": False, "errors": [str(p) for p in exc.problems]})
    if args.json:
        _emit_json({"ok": not failed, "results": results})
    else:
        for exc in failed:
            for problem in exc.problems:
                sys.stderr.write(f"{problem}\n")
        if not args.quiet:
            for r in results:
                if r["ok"]:
                    print(f"{r['recipe']}: ok (recipe hash {r['hash']})")
    return 2 if failed else 0


def cmd_plan(args: argparse.Namespace) -> int:
    from .recipe import load_recipe
    from .stages import describe

    loaded = load_recipe(args.recipe, args.overrides)
    stages = describe(loaded.recipe)
    if args.json:
        _emit_json({"recipe": str(args.recipe), "hash": loaded.hash, "stages": stages})
        return 0
    from rich.console import Console
    from rich.syntax import Syntax

    from .yamlio import dump

    console = Console()
    console.print(f"[bold]{loaded.recipe.name}[/] (recipe hash {loaded.hash}): "
                  f"{' → '.join(s['stage'] for s in stages)}")
    for s in stages:
        console.print(f"\n[bold blue]{s['stage']}[/]")
        if s["config"]:
            console.print(Syntax(dump(s["config"]), "yaml", theme="ansi_dark", background_color="default"))
    return 0


def cmd_plugins(args: argparse.Namespace) -> int:
    from .plugin_table import plugin_rows, print_plugin_table
    from .registry import FAMILIES, registries

    if args.family is not None and args.family not in FAMILIES:
        from .registry import unknown_message

        raise UsageError("gaitrun plugins: error: " + unknown_message("plugin", args.family, list(FAMILIES))
                         .replace("unknown plugin plugin", "unknown plugin family"))
    rows = plugin_rows(registries(), args.family)
    if args.json:
        _emit_json(rows)
    else:
        print_plugin_table(rows)
    return 0


def cmd_schema(args: argparse.Namespace) -> int:
    from .recipe.schema import recipe_schema

    text = json.dumps(recipe_schema(), indent=2) + "\n"
    if args.out:
        from .atomic import write_text

        write_text(args.out, text)
    else:
        sys.stdout.write(text)
    return 0


def _execute(ctx: Any, *, as_json: bool, quiet: bool) -> int:
    from .stages import run_stages
    from .terminal import captured

    with captured(ctx.folder.file("log.txt")):  # library chatter goes to log.txt, not the terminal
        status = run_stages(ctx)
    stages = {s["name"]: s["status"] for s in ctx.folder.manifest["stages"]}
    if as_json:
        _emit_json({"ok": status == "done", "status": status, "run_folder": str(ctx.folder.path),
                    "stages": stages})
    elif status == "done":
        print(f"run finished: {ctx.folder.path}{_result_figures(ctx.folder)}")
    else:
        stopped = next(s for s in ctx.folder.manifest["stages"] if s["status"] == "not_implemented")
        sys.stderr.write(f"gaitrun: run stopped at stage '{stopped['name']}': {stopped['reason']}; "
                         f"finished stages are in {ctx.folder.path}\n")
    return 0 if status == "done" else 1


def _result_figures(folder: Any) -> str:
    """" (accuracy 0.95, rank1_nm 0.93)": the headline figures of metrics.json's summary."""
    from .atomic import read_json

    path = folder.file("metrics.json")
    mean = (read_json(path).get("summary") or {}).get("mean", {}) if path.is_file() else {}
    keys = [k for k in ("accuracy", "rank1_nm", "rank1_bg", "rank1_cl") if isinstance(mean.get(k), (int, float))]
    return f" ({', '.join(f'{k} {mean[k]:.4f}' for k in keys)})" if keys else ""


def _context(loaded: Any, folder: Any, args: argparse.Namespace) -> Any:
    from .callbacks import CallbackList, ConsoleCallback
    from .registry import registries
    from .stages import RunContext

    quiet = args.quiet or args.json
    callbacks = [] if quiet else [ConsoleCallback(live=True)]
    return RunContext(loaded=loaded, folder=folder, regs=registries(),
                      callbacks=CallbackList(callbacks), strict=args.strict, quiet=quiet)


def cmd_run(args: argparse.Namespace) -> int:
    from .recipe import load_recipe
    from .runfolder import RunFolder
    from .stages import plan

    loaded = load_recipe(args.recipe, args.overrides)
    if loaded.recipe.search is not None:
        from .sweep import run_sweep

        return run_sweep(loaded, artifacts=args.artifacts, strict=args.strict, quiet=args.quiet, as_json=args.json)
    folder = RunFolder.create(loaded, plan(loaded.recipe), artifacts=args.artifacts)
    return _execute(_context(loaded, folder, args), as_json=args.json, quiet=args.quiet)


def cmd_resume(args: argparse.Namespace) -> int:
    from .recipe import load_recipe
    from .runfolder import RunFolder
    from .sweep import is_sweep_folder, resume_sweep

    if is_sweep_folder(args.run_folder):
        return resume_sweep(args.run_folder, strict=args.strict, quiet=args.quiet, as_json=args.json)
    folder = RunFolder.open(args.run_folder)
    loaded = load_recipe(folder.file("recipe.yaml"))
    if loaded.hash != folder.manifest["recipe_hash"]:
        raise UsageError(f"{folder.file('recipe.yaml')} no longer matches the run's recipe hash "
                         f"{folder.manifest['recipe_hash']}; start a new run instead of resuming")
    if folder.is_finished():
        if not args.quiet:
            print(f"nothing to resume: every stage of {folder.path} is finished")
        return 0
    return _execute(_context(loaded, folder, args), as_json=args.json, quiet=args.quiet)


def _quiet_tensorflow() -> None:
    """TensorFlow's C++ start-up chatter (CUDA probing on CPU machines) is not for users."""
    import os

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("GRPC_VERBOSITY", "ERROR")


def _open_run(path: Path) -> tuple[Any, Any]:
    from .recipe import load_recipe
    from .runfolder import RunFolder

    folder = RunFolder.open(path)
    loaded = load_recipe(folder.file("recipe.yaml"))
    if loaded.hash != folder.manifest["recipe_hash"]:
        raise UsageError(f"{folder.file('recipe.yaml')} no longer matches the run's recipe hash "
                         f"{folder.manifest['recipe_hash']}; start a new run instead")
    return folder, loaded


def cmd_rerun(args: argparse.Namespace) -> int:
    """``gaitrun export|bench RUN``: run that stage again on a finished run."""
    folder, loaded = _open_run(args.run_folder)
    if args.stage not in [s["name"] for s in folder.manifest["stages"]]:
        raise UsageError(f"{folder.path}: its recipe has no deploy section, so there is nothing to "
                         f"{args.stage}; add deploy: and run the recipe again")
    if folder.stage("train")["status"] != "done":
        raise UsageError(f"{folder.path}: training has not finished; run 'gaitrun resume {folder.path}' first")
    for name in [s["name"] for s in folder.manifest["stages"]]:
        if name in (args.stage, "report") or (args.stage == "export" and name == "bench"):
            folder.set_status(name, "pending")
    return _execute(_context(loaded, folder, args), as_json=args.json, quiet=args.quiet)


def cmd_prune(args: argparse.Namespace) -> int:
    """A new run folder that reuses RUN's data and trained folds and prunes them at P."""
    from .recipe import load_recipe
    from .runfolder import RunFolder
    from .stages import plan

    source, _ = _open_run(args.run_folder)
    if source.stage("train")["status"] != "done":
        raise UsageError(f"{source.path}: training has not finished; run 'gaitrun resume {source.path}' first")
    overrides = [f"prune.percentile={args.percentile}", *args.overrides]
    loaded = load_recipe(source.file("recipe.yaml"), overrides)
    stages = [s for s in plan(loaded.recipe) if s not in ("data", "train")]
    folder = RunFolder.create(loaded, stages, artifacts=args.artifacts)
    folder.manifest["reuses_run"] = str(source.path.resolve())
    folder.save()
    return _execute(_context(loaded, folder, args), as_json=args.json, quiet=args.quiet)


def cmd_engine_build(args: argparse.Namespace) -> int:
    from .export import build_bundle_engine

    engine = build_bundle_engine(args.bundle, workspace_mb=args.workspace_mb)
    if not args.quiet:
        print(f"engine written: {engine}")
    return 0


def main(argv: list[str] | None = None) -> int:
    _quiet_tensorflow()
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and not argv[0].startswith("-") and argv[0] not in COMMANDS:
        argv.insert(0, "run")  # gaitrun RECIPE == gaitrun run RECIPE
    as_json = "--json" in argv
    try:
        args = build_parser().parse_args(argv)
        if args.command is None:
            build_parser().print_help()
            return 0
        return args.func(args)
    except GaitrunError as exc:
        return _error(exc, as_json=as_json)
    except KeyboardInterrupt:
        sys.stderr.write("gaitrun: interrupted; continue with 'gaitrun resume RUN_FOLDER'\n")
        return 130


if __name__ == "__main__":
    sys.exit(main())
