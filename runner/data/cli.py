"""``gaitrun data ...``: make the synthetic gait dataset, inspect a recipe's data."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

from ..errors import UsageError

CASIA_WALKS = {"nm": 6, "bg": 2, "cl": 2}


def _walks(conditions: list[str], counts: str | None) -> dict[str, int]:
    walks = {c: CASIA_WALKS[c] for c in conditions}
    for item in (counts or "").split(","):
        if not item.strip():
            continue
        cond, _, n = item.partition("=")
        if cond not in CASIA_WALKS or not (n.isascii() and n.isdigit()) or int(n) < 1:
            raise UsageError(f"--walks: expected e.g. nm=6,bg=2,cl=2 (conditions nm, bg, cl), got {item!r}")
        walks[cond] = int(n)
    return walks


def cmd_synthetic(args: argparse.Namespace) -> int:
    from ..progress import console_bar
    from .synthetic import generate

    if any(not 0 <= v <= 180 for v in args.views):
        raise UsageError("--views: angles must be between 0 and 180 degrees")
    walks = _walks(args.conditions, args.walks)
    with console_bar("synthetic gait", unit="sequences", disable=args.quiet) as progress:
        out = generate(args.out, subjects=args.subjects, views=args.views, walks=walks,
                       frames=args.frames, size=tuple(args.size), seed=args.seed, workers=args.workers,
                       progress=progress)
    if not args.quiet:
        n = args.subjects * sum(walks.values()) * len(args.views)
        print(f"wrote {n} sequences to {out}")
    return 0


def cmd_inspect(args: argparse.Namespace) -> int:
    from ..callbacks import CallbackList
    from ..recipe import load_recipe
    from ..registry import registries
    from ..runfolder import RunFolder
    from ..stages import RunContext
    from ..stages.data import prepared, record
    from .inspect import contact_sheet, print_counts

    loaded = load_recipe(args.recipe, args.overrides)
    folder = RunFolder.create(loaded, ["inspect"], artifacts=args.artifacts)
    ctx = RunContext(loaded=loaded, folder=folder, regs=registries(), callbacks=CallbackList())
    prep = prepared(ctx)
    info = record(ctx, prep) | {"skipped_samples": prep.store.skipped}
    contact_sheet(ctx, prep, folder.file("plots", "contact_sheet.png"))
    folder.set_status("inspect", "done")
    if args.json:
        import json
        import sys

        sys.stdout.write(json.dumps(info | {"run_folder": str(folder.path)}, indent=2) + "\n")
    elif not args.quiet:
        print_counts(info)
        print(f"contact sheet: {folder.file('plots', 'contact_sheet.png')}")
    return 0


def add_data_commands(sub: argparse._SubParsersAction, common: Callable) -> None:
    data = sub.add_parser("data", help="make or inspect datasets")
    data_sub = data.add_subparsers(dest="data_command", metavar="DATA_COMMAND", required=True,
                                   parser_class=type(data))

    p = data_sub.add_parser("synthetic-gait", help="write a synthetic CASIA-B-layout silhouette dataset")
    p.add_argument("--out", type=Path, required=True, help="dataset root to create")
    p.add_argument("--subjects", type=int, default=20, choices=range(2, 1000), metavar="N")
    p.add_argument("--views", type=int, nargs="+", default=[0, 54, 90, 126, 180], metavar="DEG")
    p.add_argument("--conditions", nargs="+", default=["nm", "bg", "cl"], choices=sorted(CASIA_WALKS))
    p.add_argument("--walks", default=None, help="walks per condition, e.g. nm=6,bg=2,cl=2 (CASIA-B's)")
    p.add_argument("--frames", type=int, default=30, choices=range(2, 1000), metavar="T")
    p.add_argument("--size", type=int, nargs=2, default=[64, 64], metavar=("H", "W"))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workers", type=int, default=2, choices=range(1, 257), metavar="N")
    common(p, overrides=False)
    p.set_defaults(func=cmd_synthetic)

    p = data_sub.add_parser("inspect", help="counts per class/subject/condition/view and a contact sheet")
    p.add_argument("recipe", type=Path)
    p.add_argument("--artifacts", type=Path, default=None)
    common(p)
    p.set_defaults(func=cmd_inspect)
