"""Cross-section checks that need no TensorFlow: modality vs dataset, architecture input
kind and augmentations; loss and evaluation vs embedding models; precision vs target;
``search.space`` key paths and values. Each returns (key path, message) pairs."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from ..families import INPUT_SOURCES
from ..registry import Registries
from ..yamlio import KeyPath

Found = list[tuple[KeyPath, str]]


def check_data_model(recipe: Any, regs: Registries) -> Found:
    found: Found = []
    data, model = recipe.data, recipe.model
    dataset = regs["datasets"].get(data.adapter)
    arch = regs["architectures"].get(model.arch)
    modalities = sorted(dataset.declared("MODALITIES"))
    if data.modality not in modalities:
        found.append((("data", "modality"), f"dataset '{data.adapter}' provides {', '.join(modalities)}, "
                      f"not '{data.modality}'"))
        return found
    kind = arch.declared("INPUT_KIND")
    source = (dataset.declared("KIND"), data.modality)
    if source not in INPUT_SOURCES[kind]:
        fits = sorted(f"{m} {k}s" for k, m in INPUT_SOURCES[kind])
        found.append((("model", "arch"), f"architecture '{model.arch}' takes {kind} input, which "
                      f"{data.modality} {source[0]}s from '{data.adapter}' cannot feed (it needs: "
                      f"{', '.join(fits)})"))
    return found


def check_augment(recipe: Any, regs: Registries) -> Found:
    found: Found = []
    kind = regs["architectures"].get(recipe.model.arch).declared("INPUT_KIND")
    for i, item in enumerate(recipe.augment):
        name = next(iter(type(item).model_fields))
        plugin = regs["augmentations"].get(name)
        supported = plugin.declared("MODALITIES")
        layouts = plugin.declared("LAYOUTS")  # optional declaration
        if recipe.data.modality not in supported:
            found.append((("augment", i, name), f"augmentation '{name}' does not apply to "
                          f"{recipe.data.modality} data (it supports {', '.join(sorted(supported))})"))
        elif layouts is not None and kind not in layouts:
            found.append((("augment", i, name), f"augmentation '{name}' does not work on the {kind} input "
                          f"of '{recipe.model.arch}' (it supports {', '.join(sorted(layouts))})"))
    return found


def check_embedding(recipe: Any, regs: Registries) -> Found:
    found: Found = []
    embedding = regs["architectures"].get(recipe.model.arch).declared("EMBEDDING")
    if recipe.train.loss.name != "cross_entropy" and not embedding:
        found.append((("train", "loss", "name"), f"loss '{recipe.train.loss.name}' needs an embedding "
                      f"model; '{recipe.model.arch}' is a plain classifier (use cross_entropy)"))
    if recipe.evaluate.knn is not None and not embedding:
        found.append((("evaluate", "knn"), f"k-NN evaluation needs an embedding model; "
                      f"'{recipe.model.arch}' has no embedding layer (remove evaluate.knn)"))
    return found


def check_deploy(recipe: Any, regs: Registries) -> Found:
    if recipe.deploy is None:
        return []
    supported = regs["exporters"].get(recipe.deploy.target).declared("PRECISIONS")
    if recipe.deploy.precision not in supported:
        return [(("deploy", "precision"), f"target '{recipe.deploy.target}' supports "
                 f"{', '.join(sorted(supported))}, not {recipe.deploy.precision}")]
    return []


def check_distributed(recipe: Any, regs: Registries) -> Found:
    """``train.distributed``: what the distributed fit does not support."""
    train = recipe.train
    dist = train.distributed
    if dist is None:
        return []
    found: Found = []
    if dist.workers > 1 and train.strategy == "mirrored":
        found.append((("train", "strategy"), "strategy 'mirrored' (one process, local GPUs) cannot be combined "
                      "with train.distributed.workers > 1; use strategy: auto (each worker uses "
                      "train.distributed.gpus_per_worker GPUs)"))
    if train.batch_size % dist.workers:
        found.append((("train", "batch_size"), f"{train.batch_size} is the global batch and must be divisible by "
                      f"train.distributed.workers ({dist.workers})"))
    if train.mixed_precision:
        found.append((("train", "mixed_precision"), "mixed precision is not supported with train.distributed; "
                      "set mixed_precision: false or distributed: null"))
    if recipe.data.cache != "disk":
        found.append((("data", "cache"), f"'{recipe.data.cache}': distributed workers read the clip store from "
                      "the disk cache (on storage every node shares); set data.cache: disk"))
    batches = recipe.search.space.get("train.batch_size") if recipe.search is not None else None
    if batches is not None and batches.kind in ("choice", "grid"):  # each trial's global batch is split too
        bad = [v for v in batches.args if isinstance(v, int) and v % dist.workers]
        if bad:
            found.append((("search", "space", "train.batch_size"), f"{', '.join(map(str, bad))}: a trial's "
                          f"global batch must be divisible by train.distributed.workers ({dist.workers})"))
    return found


def check_validation(recipe: Any, regs: Registries) -> Found:
    """``train.validate_every`` > 1 leaves epochs without validation figures, which a plateau
    schedule or early stopping on a ``val_`` figure reads every epoch."""
    train = recipe.train
    if train.validate_every == 1:
        return []
    if train.schedule.name == "reduce_on_plateau":
        return [(("train", "validate_every"), "schedule 'reduce_on_plateau' reads the validation loss every "
                 "epoch; use validate_every: 1, or a cosine or step schedule")]
    if train.early_stopping is not None and train.early_stopping.monitor.startswith("val_"):
        return [(("train", "validate_every"), f"early stopping reads '{train.early_stopping.monitor}' every "
                 "epoch; use validate_every: 1")]
    return []


def check_search(data: dict, validate: Callable[[dict], list[dict]], recipe: Any,
                 explain: Callable[[dict, dict], str]) -> Found:
    """Each space key must be a recipe key, and each probe value must give a valid recipe."""
    if recipe.search is None:
        return []
    from .compose import _parse_path, _set_path

    found: Found = check_shared_training(recipe)
    base = {k: v for k, v in data.items() if k != "search"}
    for key, domain in recipe.search.space.items():
        where = ("search", "space", key)
        for value in domain.probe_values():
            trial = copy.deepcopy(base)
            try:
                _set_path(trial, _parse_path(key), value, "", key)
            except Exception:
                found.append((where, f"'{key}' is not a recipe key path"))
                break
            errors = validate(trial)
            unknown = [e for e in errors if e["type"] == "extra_forbidden"]
            if unknown:
                found.append((where, f"'{key}' is not a recipe key: {explain(trial, unknown[0])}"))
                break
            if errors:
                found.append((where, f"value {value!r} for '{key}' gives an invalid recipe: {errors[0]['msg']}"))
                break
    return found


SHARED_SECTIONS = ("prune", "deploy")  # what a trial of a share_training sweep runs itself


def check_shared_training(recipe: Any) -> Found:
    """``search.share_training``: the trials reuse one training, so they may only differ in
    what comes after it (pruning and fine-tuning, export, benchmark)."""
    search = recipe.search
    if not search.share_training:
        return []
    return [(("search", "space", key), f"'{key}' changes the training, which share_training runs once "
             f"for every trial; search only prune.* and deploy.* keys, or set search.share_training: false")
            for key in search.space if key.split(".")[0] not in SHARED_SECTIONS]


CHECKS = (check_data_model, check_augment, check_embedding, check_deploy, check_validation, check_distributed)
