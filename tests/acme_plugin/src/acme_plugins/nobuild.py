"""Acme's architecture that forgot its build function (a broken plugin)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

INPUT_KIND = "image"
LOGITS = "logits"
EMBEDDING = None


class Params(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def biuld(*, input_shape, num_classes, params):  # misspelt: the registry refuses the module
    raise NotImplementedError
