"""One fold's fit: per-epoch checkpoints (model + optimizer, atomically) and history.csv, so an
interrupted fold resumes at its last finished epoch."""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..atomic import atomic_path, read_json, write_json, write_text
from .precision import FLOAT32, with_policy


@dataclass
class FitPlan:
    """Everything ``fit_fold`` needs besides the model and the data."""

    folder: Path
    epochs: int
    steps_per_epoch: int
    callbacks: list[Any]
    class_weight: dict | None
    on_epoch: Callable[[int, dict], None]
    validate_every: int = 1

    def validation_epochs(self) -> list[int]:
        """The 1-based epochs after which the validation set is evaluated: every ``validate_every``-th
        and the last."""
        return [e for e in range(1, self.epochs + 1) if e % self.validate_every == 0 or e == self.epochs]


def _history_csv(rows: list[dict]) -> str:
    keys = list(dict.fromkeys(k for row in rows for k in row))
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=keys)
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


def epoch_checkpoint(plan: FitPlan, full_model: Any, rows: list[dict]) -> Any:
    import keras

    class EpochCheckpoint(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
            self.started = time.perf_counter()

        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            logs = {k: float(v) for k, v in (logs or {}).items()}
            logs["epoch_time_s"] = round(time.perf_counter() - self.started, 4)
            lr = getattr(self.model.optimizer, "learning_rate", None)
            if lr is not None:
                logs["lr"] = float(keras.ops.convert_to_numpy(lr))
            rows.append({"epoch": epoch + 1, **logs})
            name = f"checkpoint-{epoch + 1:04d}.keras"
            with atomic_path(plan.folder / name, suffix=".keras") as tmp:
                full_model.save(tmp)
            write_text(plan.folder / "history.csv", _history_csv(rows))
            write_json(plan.folder / "checkpoint.json", {"epoch": epoch + 1, "model": name, "history": rows})
            for old in plan.folder.glob("checkpoint-*.keras"):
                if old.name != name:
                    old.unlink(missing_ok=True)
            plan.on_epoch(epoch, logs)

    return EpochCheckpoint()


def resume_point(folder: Path, meta: Path | None = None) -> tuple[int, Path | None, list[dict]]:
    """(epochs done, checkpoint model path, history rows) of an interrupted fold; ``meta``: its
    ``checkpoint.json`` if not the one in ``folder`` (a copy kept by Ray Train)."""
    meta = meta or folder / "checkpoint.json"
    if not meta.is_file():
        return 0, None, []
    info = read_json(meta)
    path = folder / info["model"]
    return (info["epoch"], path, info["history"]) if path.is_file() else (0, None, [])


def fit_fold(train_model: Any, full_model: Any, train_ds: Any, val_ds: Any, plan: FitPlan,
             *, initial_epoch: int, history: list[dict]) -> list[dict]:
    """Fit from ``initial_epoch`` to ``plan.epochs``; returns the whole history."""
    rows = list(history)
    if initial_epoch < plan.epochs:
        train_model.fit(train_ds, steps_per_epoch=plan.steps_per_epoch, epochs=plan.epochs,
                        initial_epoch=initial_epoch, validation_data=val_ds, verbose=0, shuffle=False,
                        validation_freq=plan.validation_epochs(),
                        class_weight=plan.class_weight,
                        callbacks=[*plan.callbacks, epoch_checkpoint(plan, full_model, rows)])
    return rows


def finish_fold(folder: Path, full_model: Any) -> Any:
    """Save the fold's final model in float32 (whatever precision trained it), drop the resume
    checkpoints and return the saved model."""
    full_model = with_policy(full_model, FLOAT32)
    with atomic_path(folder / "model.keras", suffix=".keras") as tmp:
        full_model.save(tmp)
    for old in folder.glob("checkpoint-*.keras"):
        old.unlink(missing_ok=True)
    return full_model
