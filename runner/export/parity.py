"""Parity: run an exported model, compare it with the Keras model, and gate on ``deploy.max_drop``.

``score_backend(path, x)`` runs the exported artifact on CPU and returns its outputs as NumPy:
``*.onnx`` with ONNX Runtime (CPU provider), ``*.tflite`` with the TFLite interpreter, and a
SavedModel folder reloaded with ``tf.saved_model.load``. ``parity_report`` compares those
outputs with the Keras model's; ``check_max_drop`` raises when the export loses too much.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import StageError
from .arrays import iter_batches

DEFAULT_BATCH = 32


def score_backend(path: str | Path, x: np.ndarray, *, batch_size: int = DEFAULT_BATCH,
                  runtime: Callable[..., Any] | None = None) -> np.ndarray:
    """Outputs of the exported model at ``path`` on inputs ``x`` (first output if several), run
    by ``runtime`` (an exporter's ``runtime`` hook), or by the runtime its form implies."""
    from . import runtimes

    path = Path(path)
    runtime = runtime or runtimes.for_path(path)
    if runtime is None or path.suffix == ".keras":
        raise StageError("export", f"{path}: cannot score this artifact on CPU (expected a .onnx or .tflite "
                                   "file or a SavedModel folder); TensorRT engines are scored on the target")
    return _batched(runtime(path), x, batch_size)


def run_keras(model: Any, x: np.ndarray, *, batch_size: int = DEFAULT_BATCH) -> np.ndarray:
    """The reference: the Keras model's outputs, in inference mode."""
    return _batched(lambda b: np.asarray(model(b, training=False)), x, batch_size)


def run_onnx(path: Path, x: np.ndarray, *, batch_size: int = DEFAULT_BATCH) -> np.ndarray:
    """Run an ONNX model with ONNX Runtime's CPU provider."""
    from .runtimes import onnx

    return _batched(onnx(path), x, batch_size)


def run_tflite(path: Path, x: np.ndarray, *, batch_size: int = DEFAULT_BATCH) -> np.ndarray:
    """Run a float-I/O TFLite model, resizing its dynamic batch axis to each batch."""
    from .runtimes import tflite

    return _batched(tflite(path), x, batch_size)


def parity_report(reference_outputs: np.ndarray, exported_outputs: np.ndarray,
                  labels: np.ndarray | None = None) -> dict[str, float | int]:
    """How far the exported outputs are from the reference, and each one's accuracy on ``labels``.

    ``labels`` are class indices (or one-hot rows). Top-1 agreement is the share of samples on
    which both models pick the same class.
    """
    ref, exp = np.asarray(reference_outputs, np.float64), np.asarray(exported_outputs, np.float64)
    if ref.shape != exp.shape:
        raise StageError("export", f"exported outputs have shape {exp.shape}, the Keras model's {ref.shape}")
    diff = np.abs(ref - exp)
    report: dict[str, float | int] = {
        "n": int(len(ref)), "max_abs_diff": float(diff.max()), "mean_abs_diff": float(diff.mean()),
        "top1_agreement": float(np.mean(ref.argmax(-1) == exp.argmax(-1))),
    }
    if labels is not None:
        truth = np.asarray(labels)
        truth = truth.argmax(-1) if truth.ndim == 2 else truth
        report["reference_accuracy"] = float(np.mean(ref.argmax(-1) == truth))
        report["exported_accuracy"] = float(np.mean(exp.argmax(-1) == truth))
        report["accuracy_drop"] = report["reference_accuracy"] - report["exported_accuracy"]
    return report


def check_max_drop(keras_metric: float, exported_metric: float, max_drop: float, *,
                   target: str, precision: str, metric: str = "accuracy") -> float:
    """Return the drop ``keras_metric - exported_metric``; raise ``StageError`` past ``max_drop``."""
    drop = keras_metric - exported_metric
    if drop > max_drop:
        raise StageError("export", f"{target} {precision} export loses {drop:.3f} {metric} "
                                   f"({keras_metric:.3f} -> {exported_metric:.3f}), more than "
                                   f"deploy.max_drop={max_drop:g}; {_remedy(precision)}")
    return drop


def _remedy(precision: str) -> str:
    return {"int8": "use precision fp16 or more calibration_samples",
            "fp16": "use precision fp32"}.get(
        precision, "an fp32 export should match the Keras model: check for custom layers the "
                   "converter does not support, or try another target")


def _batched(run: Callable[[np.ndarray], np.ndarray], x: np.ndarray, batch_size: int) -> np.ndarray:
    return np.concatenate([np.asarray(run(b)) for b in iter_batches(x, batch_size)], axis=0)


def _tflite_interpreter(path: Path) -> Any:
    """LiteRT's interpreter when installed, else TensorFlow's (deprecated, still in TF 2.21)."""
    from .runtimes import _tflite_interpreter as interpreter

    return interpreter(Path(path), 0)
