"""``gaitrun data inspect RECIPE``: counts per class / subject / condition / view, and a
contact sheet of raw and augmented samples written into a new run folder."""

from __future__ import annotations

from typing import Any

import numpy as np


def _frame_view(x: np.ndarray, kind: str) -> np.ndarray:
    """One displayable (H, W) image of a model input: a frame, or the flow magnitude."""
    if kind == "inertial":
        return x.T  # channels x time
    if kind == "stack2d":
        x = x[..., :2]
    elif kind != "image":
        x = x[len(x) // 2]
    if x.shape[-1] == 2:
        return np.hypot(x[..., 0], x[..., 1])
    return x.mean(axis=-1) if x.shape[-1] == 3 else x[..., 0]


def contact_sheet(ctx: Any, prep: Any, out_png: Any, *, n: int = 6) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..atomic import atomic_path
    from ..train.parts import augmenters
    from .pipeline import eval_dataset, train_dataset

    rng = np.random.default_rng(ctx.recipe.seed)
    picks = np.sort(rng.choice(len(prep.samples), size=min(n, len(prep.samples)), replace=False))
    frames, stride, pad = ctx.recipe.data.clip.frames, ctx.recipe.data.clip.stride, ctx.recipe.data.clip.pad
    raw_ds, owners = eval_dataset(prep.store, picks, None, kind=prep.kind, frames=frames, stride=stride, pad=pad,
                                  batch_size=256)
    raw = next(iter(raw_ds)).numpy()
    first = [int(np.flatnonzero(owners == p)[0]) for p in picks]
    aug_ds = train_dataset(prep.store, picks, prep.labels, kind=prep.kind, frames=frames, batch_size=len(picks),
                           seed=ctx.recipe.seed, augmenters=augmenters(ctx), pad=pad)
    aug_x, aug_y = next(iter(aug_ds))
    fig, axes = plt.subplots(2, len(picks), figsize=(2.2 * len(picks), 4.8), squeeze=False)
    for col, row in enumerate(first):
        s = prep.samples[picks[col]]
        axes[0, col].imshow(_frame_view(raw[row], prep.kind), cmap="gray")
        axes[0, col].set_title(f"{s.label} {s.condition or ''} {s.view or ''}".strip(), fontsize=8)
        axes[1, col].imshow(_frame_view(aug_x[col].numpy(), prep.kind), cmap="gray")
        axes[1, col].set_title(f"augmented ({prep.class_names[int(aug_y[col])]})", fontsize=8)
    for ax in axes.flat:
        ax.axis("off")
    fig.tight_layout()
    with atomic_path(out_png, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=90)
    plt.close(fig)


def print_counts(info: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    console.print(f"[bold]{info['samples']}[/] samples, input {tuple(info['input_shape'])} ({info['layout']})")
    for key in ("classes", "subjects", "conditions", "views", "splits"):
        counts = info[key]
        if not counts:
            continue
        table = Table(title=f"per {key[:-1] if key != 'classes' else 'class'}", show_header=False)
        items = list(counts.items())
        shown = items if len(items) <= 24 else items[:24]
        table.add_row(" ".join(f"{k}:{v}" for k, v in shown) + (" ..." if len(items) > 24 else ""))
        console.print(table)
    print_skipped(console, info.get("skipped_samples", []))


def print_skipped(console: Any, skipped: list[dict[str, Any]], *, shown: int = 20) -> None:
    """The samples left out as bad, with the file at fault and why (as ``skipped.json``)."""
    if not skipped:
        return
    from rich.table import Table

    table = Table(title=f"[yellow]{len(skipped)} bad samples left out[/] (listed in skipped.json)")
    for column in ("sample", "file", "reason"):
        table.add_column(column, overflow="fold")
    for entry in skipped[:shown]:
        table.add_row(entry["path"], entry.get("file", ""), entry["reason"])
    if len(skipped) > shown:
        table.add_row(f"... and {len(skipped) - shown} more", "", "")
    console.print(table)
