"""Lifecycle hooks: a base class of no-op methods and a list that calls them (as Keras
callbacks do). The progress display and the run-folder writers are callbacks."""

from __future__ import annotations

from typing import Any


class Callback:
    """Override what you need; every hook does nothing by default."""

    def on_run_start(self, folder: Any, stages: list[str]) -> None: ...
    def on_stage_start(self, stage: str) -> None: ...
    def on_stage_end(self, stage: str, status: str, reason: str | None) -> None: ...
    def on_fold_start(self, fold: str, total_epochs: int) -> None: ...
    def on_epoch_end(self, fold: str, epoch: int, logs: dict[str, float]) -> None: ...
    def on_fold_end(self, fold: str, metrics: dict[str, Any]) -> None: ...
    def on_message(self, text: str, *, level: str = "info") -> None: ...
    def on_progress(self, task: str, done: int, total: int) -> None: ...
    def on_run_end(self, status: str) -> None: ...


class CallbackList(Callback):
    def __init__(self, callbacks: list[Callback] | None = None):
        self.callbacks = list(callbacks or [])

    def __getattribute__(self, name: str) -> Any:
        if name.startswith("on_"):
            def call(*args: Any, **kwargs: Any) -> None:
                for cb in object.__getattribute__(self, "callbacks"):
                    getattr(cb, name)(*args, **kwargs)
            return call
        return object.__getattribute__(self, name)


# A live progress bar must not take over sys.stdout/sys.stderr: library warnings written there
# while it runs belong in the run's log.txt (gaitrun.terminal), not on the terminal.
KEEP_STREAMS = {"redirect_stdout": False, "redirect_stderr": False}


class ConsoleCallback(Callback):
    """Human progress on stderr with rich: stage lines, a bar per fold's epochs."""

    def __init__(self, *, live: bool):
        from rich.console import Console

        self.console = Console(stderr=True)
        self.live = live and self.console.is_terminal
        self._progress: Any = None
        self._task: Any = None

    def on_run_start(self, folder: Any, stages: list[str]) -> None:
        self.console.print(f"[bold]gaitrun[/] run folder [cyan]{folder.path}[/] stages: {', '.join(stages)}")

    def on_stage_start(self, stage: str) -> None:
        self.console.print(f"[bold blue]▶[/] {stage}")

    def on_stage_end(self, stage: str, status: str, reason: str | None) -> None:
        colour = {"done": "green", "deferred": "yellow", "failed": "red"}.get(status, "yellow")
        self.console.print(f"  [{colour}]{status}[/]" + (f": {reason}" if reason else ""))

    def on_fold_start(self, fold: str, total_epochs: int) -> None:
        if not self.live:
            return
        from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

        self._progress = Progress(TextColumn(f"fold {fold}"), BarColumn(), TextColumn("{task.description}"),
                                  TimeRemainingColumn(), console=self.console, transient=True, **KEEP_STREAMS)
        self._progress.start()
        self._task = self._progress.add_task("", total=total_epochs)

    def on_epoch_end(self, fold: str, epoch: int, logs: dict[str, float]) -> None:
        text = " ".join(f"{k}={v:.4g}" for k, v in logs.items() if isinstance(v, (int, float)))
        if self._progress is not None:
            self._progress.update(self._task, advance=1, description=text)
        else:
            self.console.print(f"  fold {fold} epoch {epoch + 1}: {text}")

    def on_fold_end(self, fold: str, metrics: dict[str, Any]) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
        shown = {k: v for k, v in metrics.items() if isinstance(v, (int, float))}
        self.console.print(f"  fold {fold}: " + " ".join(f"{k}={v:.4g}" for k, v in shown.items()))

    def on_progress(self, task: str, done: int, total: int) -> None:
        if not self.live:
            return
        from rich.progress import Progress

        from .progress import columns, update

        if self._progress is None:
            self._progress = Progress(*columns(), console=self.console, transient=True, **KEEP_STREAMS)
            self._progress.start()
            self._task = self._progress.add_task(task, total=total, rate="")
        update(self._progress, self._task, done, total, "samples")
        if done >= total:
            self._progress.stop()
            self._progress = None

    def on_message(self, text: str, *, level: str = "info") -> None:
        style = {"warning": "yellow", "error": "red"}.get(level, "")
        self.console.print(f"[{style}]{text}[/]" if style else text)
