"""Keep library chatter out of the user's terminal, in the run folder's ``log.txt`` instead.

TensorFlow's C++ start-up lines (absl, oneDNN, ``cuInit``), TFLite's interpreter messages,
Python warnings (Keras' ``np.object`` FutureWarning, tf.function retracing) are all written to
file descriptors 1 and 2, partly from C++, where ``sys.stderr`` cannot catch them. While the
stages run, ``captured`` points fds 1 and 2 at the log file. gaitrun's own output (progress,
stage lines, tables) is printed with rich, and goes to the user's terminal all the same:
``sys.stderr`` is wrapped in a stream whose ``rich_proxied_file`` -- the attribute rich follows
for its own redirections -- is a duplicate of the original stderr.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO

from .errors import RunFolderError


def _flush() -> None:
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()


def _open_log(path: Path) -> int:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    except OSError as exc:
        raise RunFolderError(f"cannot write {path}: {exc.strerror or exc}; check the folder's "
                             "permissions and free space") from exc
    with contextlib.suppress(OSError):  # a full disk fails the run where it writes its results, not here
        os.write(fd, f"--- gaitrun {' '.join(sys.argv[1:])} at {time.strftime('%Y-%m-%d %H:%M:%S')}\n".encode())
    return fd


class _Stderr:
    """``sys.stderr`` during the stages: writes go to the log, rich consoles to ``terminal``."""

    def __init__(self, stream: TextIO, terminal: TextIO):
        self._stream, self.rich_proxied_file = stream, terminal

    def write(self, text: str) -> int:
        try:
            return self._stream.write(text)
        except OSError:  # the log is best effort: a full disk must not turn a warning into a crash
            return len(text)

    def flush(self) -> None:
        with contextlib.suppress(OSError):
            self._stream.flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


@contextlib.contextmanager
def captured(log_path: str | Path) -> Iterator[TextIO]:
    """Send fds 1 and 2 (Python and C/C++ writes alike) to ``log_path`` (appended) until the
    block ends, except rich output; yields a text stream on the original stderr."""
    log_fd = _open_log(Path(log_path))
    _flush()
    saved = {fd: os.dup(fd) for fd in (1, 2)}
    terminal = os.fdopen(os.dup(saved[2]), "w", buffering=1, encoding="utf-8", errors="replace")
    stderr = sys.stderr
    try:
        for fd in saved:
            os.dup2(log_fd, fd)
        sys.stderr = _Stderr(stderr, terminal)
        yield terminal
    finally:
        sys.stderr = stderr
        _flush()
        for fd, original in saved.items():
            os.dup2(original, fd)
            os.close(original)
        os.close(log_fd)
        terminal.close()
