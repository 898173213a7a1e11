"""The bench stage (not implemented yet)."""

from __future__ import annotations

from . import StageNotImplemented


def run(ctx):
    raise StageNotImplemented("benchmarking lands with issue #6 (deployment targets)")
