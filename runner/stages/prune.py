"""The prune stage (not implemented yet)."""

from __future__ import annotations

from . import StageNotImplemented


def run(ctx):
    raise StageNotImplemented("filter pruning lands with issue #5")
