"""The one error hierarchy of gaitrun.

Every error the user can cause (bad recipe, bad flag, bad data) derives from
``GaitrunError`` and carries *where* it happened as attributes, so the CLI can
print a one-line message and exit with code 2 instead of a traceback.
"""

from __future__ import annotations

from dataclasses import dataclass


class GaitrunError(Exception):
    """Base class. ``exit_code`` is what the CLI returns for it."""

    exit_code = 2


@dataclass(frozen=True)
class Problem:
    """One located problem in a recipe: ``file:line:col: key.path: message``."""

    source: str  # a file path, or "--set a.b=c" for an override
    line: int | None
    col: int | None
    key_path: str
    message: str

    def __str__(self) -> str:
        where = self.source
        if not where.strip() or (any(c.isspace() for c in where) and not where.startswith("--set ")):
            # a file name with spaces stays readable
            where = "'" + where.replace("'", "\\x27") + "'"
        if self.line is not None:
            where += f":{self.line}:{self.col or 1}"
        key = f" {self.key_path}:" if self.key_path else ""
        return printable(f"{where}:{key} {self.message}")


def printable(text: str) -> str:
    """``text`` on one line: control characters (newlines from a --set value) escaped."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


class RecipeError(GaitrunError):
    """A recipe (or an override of it) is invalid. Holds every problem found."""

    def __init__(self, problems: list[Problem]):
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))

    def __reduce__(self):  # picklable, so errors cross process boundaries (Ray trials)
        return (type(self), (self.problems,))


class UsageError(GaitrunError):
    """A bad command-line flag or argument."""


class PluginError(GaitrunError):
    """A plugin is unknown or does not fit its family."""

    def __init__(self, message: str, *, family: str | None = None, plugin: str | None = None):
        self.family = family
        self.plugin = plugin
        super().__init__(message)

    def __reduce__(self):
        return (_rebuild, (type(self), (str(self),), {"family": self.family, "plugin": self.plugin}))


class DataError(GaitrunError):
    """A data file or folder is missing, empty or corrupt. ``path`` names it."""

    def __init__(self, path: str, message: str):
        self.path = str(path)
        self.reason = message
        super().__init__(f"{path}: {message}")

    def __reduce__(self):
        return (type(self), (self.path, self.reason))


class RunFolderError(GaitrunError):
    """A run folder is missing, not a run folder, or cannot be written."""


class StageError(GaitrunError):
    """A stage failed while running (exit code 1: the input was fine)."""

    exit_code = 1

    def __init__(self, stage: str, message: str):
        self.stage = stage
        self.reason = message
        super().__init__(f"stage '{stage}' failed: {message}")

    def __reduce__(self):
        return (type(self), (self.stage, self.reason))


def _rebuild(cls: type, args: tuple, kwargs: dict) -> Exception:
    return cls(*args, **kwargs)
