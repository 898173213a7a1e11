"""Acme's architecture that fits the contract but fails when built (a bug in the plugin)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

INPUT_KIND = "image"
LOGITS = "logits"
EMBEDDING = None


class Params(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def build(*, input_shape, num_classes, params: Params):
    return _layers_for(input_shape)


def _layers_for(shape):
    raise RuntimeError(f"acme: no layer plan for input shape {tuple(shape)}")
