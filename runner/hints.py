"""The one "did you mean" helper of gaitrun (unknown keys, plugin names, families, flags)."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def closest(word: str, options: Iterable[str]) -> str | None:
    """The option closest to ``word``, if any is close enough to be a likely typo."""
    found = difflib.get_close_matches(str(word), sorted(set(options)), n=1, cutoff=0.6)
    return found[0] if found else None


def did_you_mean(word: str, options: Iterable[str]) -> str:
    """``"; did you mean 'arch'?"`` or ``""``: to append to an "unknown ..." message."""
    match = closest(word, options)
    return f"; did you mean '{match}'?" if match else ""
