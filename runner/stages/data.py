"""The data stage: find the samples (generating the synthetic set if needed), decode and
preprocess them into the clip store (cached), and record counts in ``data.json`` and any
skipped files in ``skipped.json``. ``prepared(ctx)`` gives later stages the same data."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..cache import cache_root
from ..errors import DataError


@dataclass
class Prepared:
    """The recipe's data, ready for training: store positions are sample indices."""

    samples: list  # the samples in the store, in store order
    store: Any  # ClipStore
    labels: np.ndarray  # class index per sample
    class_names: list[str]
    kind: str  # the architecture's input layout
    input_shape: tuple[int, ...]


def scan(ctx: Any) -> list:
    """The recipe's samples (memoised in ctx.state)."""
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


def _input_shape(store: Any, kind: str, frames: int) -> tuple[int, ...]:
    from ..data.preprocess import layout_shape

    if kind == "inertial":
        return (frames, store.frames.shape[-1])
    _, h, w, c = store.frames.shape
    return layout_shape(kind, frames, (h, w), c)


def _refuse_short(store: Any, samples: list, data: Any, kind: str) -> Any:
    """Samples shorter than ``clip.frames`` under ``clip.pad: error``: bad samples."""
    if data.clip.pad != "error" or kind == "image":
        return store
    short = np.flatnonzero(store.lengths < data.clip.frames)
    if not len(short):
        return store
    from ..data.store import skipped_entry

    steps = "time steps" if data.modality == "inertial" else "frames"
    errors = [DataError(samples[store.kept[p]].path, f"has {store.lengths[p]} {steps} after preprocessing, fewer "
                                                     f"than data.clip.frames ({data.clip.frames})") for p in short]
    if data.on_bad_sample == "error" or len(short) == len(store.kept):
        first, more = errors[0], len(errors) - 1
        also = f", and so are {more} more of {len(store.kept)} samples" if more else ""
        raise DataError(first.path, f"{first.reason}{also}; lower "
                                    "data.clip.frames, set data.clip.pad: loop, edge or zero, or set "
                                    "data.on_bad_sample: skip to leave them out")
    return store.without(short, [skipped_entry(samples[store.kept[p]], e) for p, e in zip(short, errors, strict=True)])


def prepared(ctx: Any) -> Prepared:
    """Samples, clip store and labels (memoised; rebuilt from the cache after a resume)."""
    if "prepared" in ctx.state:
        return ctx.state["prepared"]
    from ..data.store import build_store

    data = ctx.recipe.data
    samples = scan(ctx)
    plugin = ctx.regs["datasets"].get(data.adapter)
    store = build_store(samples, plugin.impl("load"), data, cache_dir=cache_root(data.cache_dir),
                        progress=lambda done, total: ctx.callbacks.on_progress("decoding and preprocessing", done, total))
    kind = ctx.regs["architectures"].get(ctx.recipe.model.arch).declared("INPUT_KIND")
    store = _refuse_short(store, samples, data, kind)
    kept = [samples[i] for i in store.kept]
    class_names = sorted({str(s.label) for s in kept})
    index = {name: i for i, name in enumerate(class_names)}
    labels = np.asarray([index[str(s.label)] for s in kept], dtype=np.int64)
    prep = Prepared(kept, store, labels, class_names, kind, _input_shape(store, kind, data.clip.frames))
    ctx.state["prepared"] = prep
    return prep


def summary(samples: list) -> dict[str, Any]:
    def count(key: str) -> dict[str, int]:
        return dict(sorted(Counter(str(s.meta(key)) for s in samples if s.meta(key) is not None).items()))

    return {"samples": len(samples), "classes": count("label"), "subjects": count("subject"),
            "conditions": count("condition"), "views": count("view"), "splits": count("split")}


def record(ctx: Any, prep: Prepared) -> dict[str, Any]:
    """Write ``data.json`` (and ``skipped.json`` if samples were left out); the counts."""
    info = summary(prep.samples)
    info.update({"layout": prep.kind, "input_shape": list(prep.input_shape),
                 "frames_stored": int(prep.store.lengths.sum()), "store_dtype": prep.store.frames.dtype.name,
                 "skipped": len(prep.store.skipped)})
    ctx.folder.write_json("data.json", info)
    if prep.store.skipped:
        ctx.folder.write_json("skipped.json", prep.store.skipped)
        ctx.callbacks.on_message(f"  skipped {len(prep.store.skipped)} bad samples (listed in "
                                 f"{ctx.folder.path / 'skipped.json'})", level="warning")
    return info


def run(ctx: Any) -> dict:
    prep = prepared(ctx)
    info = record(ctx, prep)
    ctx.callbacks.on_message(f"  {info['samples']} samples, {len(info['classes'])} classes, "
                             f"input {tuple(prep.input_shape)} ({prep.kind})")
    return {}
