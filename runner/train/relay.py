"""A distributed fold's epochs, passed to the driver's callbacks while Ray Train's workers train.

The epoch callbacks run on the workers, not in the driver; the chief writes
``folds/<k>/checkpoint.json`` (atomically, with the history so far) after every epoch. A thread
of the driver polls that file and passes each new epoch on as it appears, once and in order, so
the terminal's bar moves during the fold and a sweep trial reports every epoch to Tune when it
ends (ASHA and the median rule can stop a weak distributed trial mid-fold). An epoch that a
restarted worker group runs again is not passed on twice. No Ray or TensorFlow here."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..atomic import read_json

POLL_S = 0.2
OnEpoch = Callable[[str, int, dict[str, float]], None]  # (fold, 0-based epoch, logs), as Callback.on_epoch_end


class EpochRelay:
    """``with EpochRelay(fold, folder, on_epoch, done): <train>``: epochs after ``done`` go to
    ``on_epoch`` while the block runs, and the last ones when it ends without an error."""

    def __init__(self, fold: str, folder: Path, on_epoch: OnEpoch, done: int):
        self.fold, self.meta, self.on_epoch = fold, folder / "checkpoint.json", on_epoch
        self.last = done
        self.error: BaseException | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=f"gaitrun-epochs-{fold}", daemon=True)

    def poll(self) -> None:
        """Pass on the epochs the chief has written since the last call."""
        try:
            rows = read_json(self.meta)["history"]
        except (OSError, ValueError, KeyError):
            return  # not written yet (the file is replaced atomically, never half-written)
        for row in rows:
            if row["epoch"] > self.last:
                self.on_epoch(self.fold, row["epoch"] - 1, {k: v for k, v in row.items() if k != "epoch"})
                self.last = row["epoch"]

    def _loop(self) -> None:
        while not self._stop.wait(POLL_S):
            try:
                self.poll()
            except Exception as exc:  # a callback failed: stop relaying, raise it when the block ends
                self.error = exc
                return

    def __enter__(self) -> EpochRelay:
        self._thread.start()
        return self

    def __exit__(self, kind: Any, *_: Any) -> None:
        self._stop.set()
        self._thread.join()
        if kind is not None:
            return  # the block's own error goes on
        if self.error is not None:
            raise self.error
        self.poll()
