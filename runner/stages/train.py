"""The train stage (not implemented yet)."""

from __future__ import annotations

from . import StageNotImplemented


def run(ctx):
    raise StageNotImplemented("training and evaluation land with issue #4 (architectures, training, CV)")
