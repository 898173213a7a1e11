"""Progress bars with a rate and a time remaining (rich), for long data work: decoding
and preprocessing a dataset, generating a synthetic one."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any


def columns() -> tuple[Any, ...]:
    """Description, bar, done/total, items per second, elapsed and remaining time."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        TaskProgressColumn,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    return (TextColumn("{task.description}"), BarColumn(), TaskProgressColumn(), MofNCompleteColumn(),
            TextColumn("{task.fields[rate]}"), TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn())


def rate_text(task: Any, unit: str) -> str:
    speed = task.speed
    return f"{speed:,.1f} {unit}/s" if speed else f"- {unit}/s"


def update(bar: Any, task_id: Any, done: int, total: int, unit: str) -> None:
    bar.update(task_id, completed=done, total=total)
    bar.update(task_id, rate=rate_text(bar.tasks[task_id], unit))


@contextlib.contextmanager
def console_bar(description: str, *, unit: str = "samples", console: Any = None,
                disable: bool = False) -> Iterator[Callable[[int, int], None]]:
    """A bar on stderr (only if it is a terminal); yields ``progress(done, total)``."""
    from rich.console import Console
    from rich.progress import Progress

    console = console or Console(stderr=True)
    with Progress(*columns(), console=console, transient=True,
                  disable=disable or not console.is_terminal) as bar:
        task_id = bar.add_task(description, total=None, rate="")
        yield lambda done, total: update(bar, task_id, done, total, unit)
