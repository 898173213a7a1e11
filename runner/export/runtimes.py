"""How exported artefacts run on this machine's CPU, for the parity gate and the bench.

Each function returns ``run(x) -> outputs`` (the first output, as NumPy) for one batch, with
``threads`` intra-op threads (0: the runtime's default). Exporter plugins name theirs in their
``runtime`` hook; :func:`for_path` picks one by the artefact's form for callers that have
only a path.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

Runner = Callable[[np.ndarray], np.ndarray]


def onnx(path: str | Path, *, threads: int = 0) -> Runner:
    """ONNX Runtime, CPU provider."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return lambda x: session.run(None, {name: x})[0]


def tflite(path: str | Path, *, threads: int = 0) -> Runner:
    """The TFLite interpreter (LiteRT's when installed), resized to each batch's shape."""
    interpreter = _tflite_interpreter(Path(path), threads)
    inp, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    shape: list[Any] = [None]

    def run(x: np.ndarray) -> np.ndarray:
        if shape[0] != x.shape:
            interpreter.resize_tensor_input(inp["index"], x.shape)
            interpreter.allocate_tensors()
            shape[0] = x.shape
        interpreter.set_tensor(inp["index"], x)
        interpreter.invoke()
        return interpreter.get_tensor(out["index"]).copy()

    return run


def saved_model(path: str | Path, *, threads: int = 0) -> Runner:
    """A SavedModel written by Keras' ``model.export``, called through its ``serve`` endpoint."""
    import tensorflow as tf

    _set_tf_threads(threads)
    loaded = tf.saved_model.load(str(path))  # the closure keeps it referenced: it owns the variables
    return lambda x: loaded.serve(tf.constant(x)).numpy()


def keras(path: str | Path, *, threads: int = 0) -> Runner:
    """A ``.keras`` model called in inference mode (the reference of every comparison)."""
    from ..keras_io import load_model

    _set_tf_threads(threads)
    model = load_model(path)
    return lambda x: np.asarray(model(x, training=False))


def for_path(path: str | Path) -> Callable[..., Runner] | None:
    """The runtime of an artefact by its form, or ``None`` (e.g. a TensorRT engine)."""
    path = Path(path)
    if path.suffix == ".onnx":
        return onnx
    if path.suffix == ".tflite":
        return tflite
    if path.suffix == ".keras":
        return keras
    if (path / "saved_model.pb").is_file():
        return saved_model
    return None


def _set_tf_threads(threads: int) -> None:
    import tensorflow as tf

    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
    except RuntimeError:
        pass  # TensorFlow is initialised already in this process: it keeps its count


def _tflite_interpreter(path: Path, threads: int) -> Any:
    kwargs = {"model_path": str(path), **({"num_threads": threads} if threads else {})}
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        import tensorflow as tf

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            return tf.lite.Interpreter(**kwargs)
    return Interpreter(**kwargs)
