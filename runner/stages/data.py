"""The data stage: find the dataset's samples (generating the synthetic one if needed) and
record what was found in ``data.json``: counts per class, subject, condition and view."""

from __future__ import annotations

from collections import Counter
from typing import Any

from ..cache import cache_root
from ..errors import DataError


def scan(ctx: Any) -> list:
    """The recipe's samples (memoised in ctx.state; cheap to redo after a resume)."""
    if "samples" not in ctx.state:
        data = ctx.recipe.data
        plugin = ctx.regs["datasets"].get(data.adapter)
        samples = plugin.impl("scan")(data.params, cache_dir=cache_root(data.cache_dir), seed=ctx.recipe.seed)
        if not samples:
            raise DataError(data.adapter, "the dataset holds no samples; check data.params")
        if data.max_samples is not None:
            samples = samples[: data.max_samples]
        ctx.state["samples"] = samples
    return ctx.state["samples"]


def summary(samples: list) -> dict[str, Any]:
    def count(key: str) -> dict[str, int]:
        return dict(sorted(Counter(str(s.meta(key)) for s in samples if s.meta(key) is not None).items()))

    return {"samples": len(samples), "classes": count("label"), "subjects": count("subject"),
            "conditions": count("condition"), "views": count("view"), "splits": count("split")}


def run(ctx: Any) -> dict:
    samples = scan(ctx)
    info = summary(samples)
    ctx.folder.write_json("data.json", info)
    ctx.callbacks.on_message(f"  {info['samples']} samples, {len(info['classes'])} classes")
    return {}
