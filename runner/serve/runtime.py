"""The served artifact: an ONNX Runtime session or a TFLite interpreter behind one ``run(x)``.

ONNX Runtime sessions may be run from several threads; the TFLite interpreter may not, so
the server calls ``run`` from one inference thread only (``gaitrun.serve.batcher``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import UsageError


@dataclass(frozen=True)
class Runtime:
    """``run(x)`` gives the artifact's first output for a float32 batch ``x``."""

    name: str  # "onnxruntime" or "tflite"
    version: str
    run: Callable[[np.ndarray], np.ndarray]


def onnx_runtime(path: Path, threads: int) -> Runtime:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    # idle intra-op threads must not spin: the event loop needs the cores between batches
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return Runtime("onnxruntime", ort.__version__, lambda x: session.run(None, {name: x})[0])


def tflite_runtime(path: Path, threads: int) -> Runtime:
    import tensorflow as tf

    from ..export.runtimes import tflite

    run = tflite(path, threads=threads)
    return Runtime("tflite", f"(TensorFlow {tf.__version__})", lambda x: np.array(run(x)))  # a copy: the
    # interpreter reuses its output buffer on the next call


def load_runtime(path: Path, threads: int) -> Runtime:
    """The runtime for the exported file ``path`` (``.onnx`` or ``.tflite``)."""
    if path.suffix == ".onnx":
        return onnx_runtime(path, threads)
    if path.suffix == ".tflite":
        return tflite_runtime(path, threads)
    raise UsageError(f"{path}: gaitrun serve runs ONNX (.onnx) and TFLite (.tflite) exports; set "
                     "deploy.target to onnx or tflite and run 'gaitrun export RUN' again")
