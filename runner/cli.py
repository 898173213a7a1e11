"""The ``gaitrun`` command line. Start-up stays light: argparse only; pydantic, ruamel and
the plugin registries load when a command needs them, TensorFlow only when a stage runs.

Exit codes: 0 success, 1 a run failed, 2 bad input (recipe, flag, data file).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import GaitrunError, RecipeError, UsageError

if TYPE_CHECKING:
    from .recipe import LoadedRecipe
    from .runfolder import RunFolder

COMMANDS = ("run", "validate", "plan", "plugins", "schema", "resume", "data", "export", "bench", "prune", "engine", "serve")


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

    _add_rerun_commands(sub)

    p = sub.add_parser("engine", help="TensorRT engine tools")
    engine_sub = p.add_subparsers(dest="engine_command", metavar="ENGINE_COMMAND", required=True, parser_class=_Parser)
    b = engine_sub.add_parser("build", help="build model.engine from a TensorRT bundle on this (GPU) machine")
    b.add_argument("bundle", type=Path)
    b.add_argument("--workspace-mb", type=int, default=None)
    _common(b, overrides=False)
    b.set_defaults(func=cmd_engine_build)

    _serve_parser(sub)
    from .data.cli import add_data_commands

    add_data_commands(sub, _common)
    return parser


def _add_rerun_commands(sub: argparse._SubParsersAction) -> None:
    """``export``, ``bench`` and ``prune``: stages again on a finished run."""
    p = sub.add_parser("export", help="export a finished run's model again; with --set (e.g. "
                       "deploy.target=tflite) into a new run folder that reuses it")
    p.add_argument("run_folder", type=Path)
    p.add_argument("--artifacts", type=Path, default=None, help="root of the new run folder (with --set)")
    p.add_argument("--strict", action="store_true")
    _common(p)
    p.set_defaults(func=cmd_rerun, stage="export")

    p = sub.add_parser("bench", help="benchmark a finished run's deployed model on every backend here")
    p.add_argument("run_folder", type=Path)
    p.add_argument("--strict", action="store_true")
    _common(p, overrides=False)
    p.set_defaults(func=cmd_rerun, stage="bench")

    p = sub.add_parser("prune", help="prune a finished run's trained models again, without retraining "
                       "(e.g. --set prune.percentile=50), into a new run folder")
    p.add_argument("run_folder", type=Path)
    p.add_argument("--artifacts", type=Path, default=None)
    p.add_argument("--strict", action="store_true")
    _common(p)
    p.set_defaults(func=cmd_prune)


def _serve_parser(sub: Any) -> None:
    p = sub.add_parser("serve", help="serve a finished run's exported model over HTTP (predict, gallery, metrics)")
    p.add_argument("run_folder", type=Path, help="a finished run with an onnx or tflite export")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1; 0.0.0.0 in a container)")
    p.add_argument("--port", type=_int_range(0, 65535), default=8000, help="default 8000")
    p.add_argument("--max-batch", type=_int_range(1, 4096), default=32, help="rows per model run (dynamic batching; default 32)")
    p.add_argument("--max-wait-ms", type=_float_range(0, 10_000), default=0.0,
                   help="how long a batch waits for more requests (default 0: it takes what queued while "
                        "the previous batch ran, as Triton's default)")
    p.add_argument("--max-body-mb", type=_float_range(0.001, 4096), default=16.0, help="largest request body in MB (default 16)")
    p.add_argument("--threads", type=_int_range(1, 1024), default=None, help="inference threads (default: all cores)")
    p.add_argument("--drift-threshold", type=_float_range(0, 1e6), default=0.25,
                   help="PSI above which gaitrun_drift_alert is 1 (default 0.25)")
    p.add_argument("--drift-window", type=_int_range(1, 1_000_000), default=256, help="recent inputs the PSI is computed over (default 256)")
    p.add_argument("--gallery", type=Path, default=None, help="gallery file (default RUN/serve/gallery.npz)")
    p.add_argument("--quiet", action="store_true", help="no start-up line and no request log")
    p.set_defaults(func=cmd_serve, json=False)


def _number(kind: type, lo: float, hi: float) -> Any:
    """An argparse type: a ``kind`` (int or float) in [lo, hi], else a one-line error."""
    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {'an integer' if kind is int else 'a number'}, "
                                             f"got {text!r}") from None
        if not lo <= value <= hi:
            raise argparse.ArgumentTypeError(f"expected {lo:g} <= value <= {hi:g}, got {value:g}")
        return value
    return parse


def _int_range(lo: int, hi: int) -> Any:
    return _number(int, lo, hi)


def _float_range(lo: float, hi: float) -> Any:
    return _number(float, lo, hi)


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
    from .errors import printable
    from .recipe import load_recipe

    results, failed = [], []
    for path in args.recipes:  # every file gets its own verdict: one bad file never stops the batch
        try:
            loaded = load_recipe(path, args.overrides)
            results.append({"recipe": str(path), "ok": True, "hash": loaded.hash})
        except RecipeError as exc:
            failed.append([str(p) for p in exc.problems])
            results.append({"recipe": str(path), "ok": False, "errors": failed[-1]})
        except GaitrunError as exc:
            failed.append([f"{path}: {printable(str(exc))}"])
            results.append({"recipe": str(path), "ok": False, "errors": failed[-1]})
    if args.json:
        _emit_json({"ok": not failed, "results": results})
    else:
        for lines in failed:
            for line in lines:
                sys.stderr.write(f"{line}\n")
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
        from .hints import did_you_mean

        raise UsageError(f"gaitrun plugins: error: unknown plugin family '{args.family}'"
                         f"{did_you_mean(args.family, FAMILIES)} known: {', '.join(FAMILIES)}")
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
        run_stages(ctx)
    stages = {s["name"]: s["status"] for s in ctx.folder.manifest["stages"]}
    if as_json:
        _emit_json({"ok": True, "status": "done", "run_folder": str(ctx.folder.path), "stages": stages})
    else:
        print(f"run finished: {ctx.folder.path}{_result_figures(ctx.folder)}")
    return 0


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
    if not loaded.matches(folder.manifest["recipe_hash"]):
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


def _open_run(path: Path) -> tuple[RunFolder, LoadedRecipe]:
    from .recipe import load_recipe
    from .runfolder import RunFolder

    folder = RunFolder.open(path)
    loaded = load_recipe(folder.file("recipe.yaml"))
    if not loaded.matches(folder.manifest["recipe_hash"]):
        raise UsageError(f"{folder.file('recipe.yaml')} no longer matches the run's recipe hash "
                         f"{folder.manifest['recipe_hash']}; start a new run instead")
    if _stage_status(folder, "train") not in (None, "done"):  # None: a run that reuses another's training
        raise UsageError(f"{folder.path}: training has not finished; run 'gaitrun resume {folder.path}' first")
    return folder, loaded


def _stage_status(folder: RunFolder, name: str) -> str | None:
    return next((s["status"] for s in folder.manifest["stages"] if s["name"] == name), None)


def cmd_rerun(args: argparse.Namespace) -> int:
    """``gaitrun export|bench RUN``: run that stage (and what follows) again on a finished run;
    ``export --set ...`` goes to a new run folder that reuses RUN's trained models."""
    folder, loaded = _open_run(args.run_folder)
    if getattr(args, "overrides", None):
        return _reuse(args, folder, skip=("data", "train", "prune"))
    if _stage_status(folder, args.stage) is None:
        raise UsageError(f"{folder.path}: its recipe has no deploy section, so there is nothing to "
                         f"{args.stage}; add one with 'gaitrun export {folder.path} --set deploy.target=onnx'")
    if args.stage == "bench" and _stage_status(folder, "export") not in ("done", "deferred"):
        raise UsageError(f"{folder.path}: its export stage is '{_stage_status(folder, 'export')}', so there "
                         f"is nothing to benchmark; run 'gaitrun export {folder.path}' first")
    rerun = ("export", "bench", "report") if args.stage == "export" else ("bench", "report")
    for name in rerun:
        if _stage_status(folder, name) is not None:
            folder.set_status(name, "pending")
    return _execute(_context(loaded, folder, args), as_json=args.json, quiet=args.quiet)


_SECTIONS_OF_STAGE = {"data": ("data", "augment"), "train": ("model", "train", "cv"), "prune": ("prune",)}


def _refuse_skipped_overrides(args: argparse.Namespace, skip: tuple[str, ...]) -> None:
    """A ``--set`` on a section whose stage is reused, not run, would change nothing: say so."""
    for item in args.overrides:
        section = item.split("=", 1)[0].split(".", 1)[0].strip()
        stage = next((st for st in skip if section in _SECTIONS_OF_STAGE.get(st, ())), None)
        if stage is not None:
            hint = ("retrain with 'gaitrun run'" if stage != "prune"
                    else f"re-prune with 'gaitrun prune {args.run_folder} --set {item}'")
            raise UsageError(f"--set {item}: 'gaitrun {args.command}' reuses the run's {stage} stage, so "
                             f"{section}.* cannot change; {hint}")


def _reuse(args: argparse.Namespace, source: RunFolder, *, skip: tuple[str, ...]) -> int:
    """A new run folder with RUN's recipe and ``--set`` overrides that reuses RUN's data and
    trained folds and runs the stages after ``skip``."""
    from .recipe import load_recipe
    from .runfolder import RunFolder
    from .stages import plan

    _refuse_skipped_overrides(args, skip)
    loaded = load_recipe(source.file("recipe.yaml"), args.overrides, retarget=True)
    stages = [s for s in plan(loaded.recipe) if s not in skip]
    if "prune" in skip and loaded.recipe.deploy is None:
        raise UsageError(f"{source.path}: its recipe has no deploy section, so there is nothing to "
                         f"export; add --set deploy.target=onnx")
    folder = RunFolder.create(loaded, stages, artifacts=args.artifacts)
    folder.manifest["reuses_run"] = source.manifest.get("reuses_run") or str(source.path.resolve())
    if "prune" in skip:  # deploy the pruned models RUN deployed (a 'gaitrun prune' run has its own)
        own = source.file("pruned", "model.keras").is_file()
        folder.manifest["reuses_pruned"] = str(source.path.resolve()) if own else source.manifest.get("reuses_pruned")
    folder.save()
    return _execute(_context(loaded, folder, args), as_json=args.json, quiet=args.quiet)


def cmd_prune(args: argparse.Namespace) -> int:
    """A new run folder that reuses RUN's data and trained folds and prunes them again, with
    the recipe's prune section changed by ``--set`` (e.g. ``prune.percentile=50``)."""
    source, loaded = _open_run(args.run_folder)
    return _reuse(args, source, skip=("data", "train"))


def cmd_engine_build(args: argparse.Namespace) -> int:
    from .export import build_bundle_engine

    engine = build_bundle_engine(args.bundle, workspace_mb=args.workspace_mb)
    if not args.quiet:
        print(f"engine written: {engine}")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    import os

    from .serve import serve
    from .serve.app import ServeOptions

    options = ServeOptions(max_batch=args.max_batch, max_wait_ms=args.max_wait_ms, max_body_mb=args.max_body_mb,
                           drift_threshold=args.drift_threshold, drift_window=args.drift_window, gallery=args.gallery)
    return serve(args.run_folder, host=args.host, port=args.port, threads=args.threads or os.cpu_count() or 1,
                 options=options, quiet=args.quiet)


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
