"""The export stage (not implemented yet)."""

from __future__ import annotations

from . import StageNotImplemented


def run(ctx):
    raise StageNotImplemented("export lands with issue #6 (deployment targets)")
