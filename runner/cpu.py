"""This machine's CPU as /proc/cpuinfo describes it: its model name and feature flags (the
int8 dot-product and bfloat16 flags change INT8 speed and which precision training uses).
Empty where /proc/cpuinfo does not exist."""

from __future__ import annotations

from pathlib import Path

CPUINFO = Path("/proc/cpuinfo")


def cpu_model(cpuinfo: Path = CPUINFO) -> str:
    """The first processor's model name ("unknown" where not given)."""
    return next((value.strip() for key, value in _fields(cpuinfo) if key == "model name"), "unknown")


def cpu_flags(cpuinfo: Path = CPUINFO) -> set[str]:
    """The first processor's feature flags."""
    return next((set(value.split()) for key, value in _fields(cpuinfo) if key == "flags"), set())


def _fields(cpuinfo: Path) -> list[tuple[str, str]]:
    try:
        text = cpuinfo.read_text(errors="replace")
    except OSError:
        return []
    return [(key.strip(), value) for key, _, value in (line.partition(":") for line in text.splitlines())]
