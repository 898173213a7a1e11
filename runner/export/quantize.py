"""ONNX INT8 static quantization, calibrated on samples from the training split.

The FP32 graph is first pre-processed (``quant_pre_process``: symbolic shape inference and
graph optimisation, as ONNX Runtime recommends), then quantized with ``quantize_static`` in
QDQ format (QuantizeLinear/DequantizeLinear pairs around each quantized op, the form TensorRT
and other runtimes understand), signed int8 weights quantized per output channel, and
activation ranges measured by running the calibration samples through the graph.
"""

from __future__ import annotations

import importlib.util
import tempfile
from pathlib import Path
from typing import Any, Literal

import numpy as np

from ..atomic import atomic_path
from ..errors import StageError
from .arrays import iter_batches

CalibrationMethod = Literal["minmax", "entropy", "percentile"]
READER_BATCH = 16


def quantize_int8(src: Path, final: Path, *, calibration: np.ndarray, input_name: str,
                  method: CalibrationMethod = "minmax", per_channel: bool = True) -> None:
    """Write an INT8 (QDQ) version of the FP32 ONNX model ``src`` to ``final`` (atomically)."""
    from onnxruntime import quantization as q
    from onnxruntime.quantization.shape_inference import quant_pre_process

    if len(calibration) == 0:
        raise StageError("export", "int8 quantization needs calibration samples; set deploy.calibration_samples")
    methods = {"minmax": q.CalibrationMethod.MinMax, "entropy": q.CalibrationMethod.Entropy,
               "percentile": q.CalibrationMethod.Percentile}
    with tempfile.TemporaryDirectory(dir=final.parent, prefix=".quant.", suffix=".tmp") as work:
        prepared = Path(work) / "prepared.onnx"
        # symbolic shape inference needs sympy (optional since onnxruntime 1.2x); ONNX's own
        # shape inference, which always runs, is enough for convolutional classifiers
        quant_pre_process(str(src), str(prepared), skip_symbolic_shape=importlib.util.find_spec("sympy") is None)
        with atomic_path(final) as tmp:
            q.quantize_static(str(prepared), str(tmp), _reader(calibration, input_name),
                              quant_format=q.QuantFormat.QDQ, per_channel=per_channel,
                              activation_type=q.QuantType.QInt8, weight_type=q.QuantType.QInt8,
                              calibrate_method=methods[method])


def _reader(calibration: np.ndarray, input_name: str) -> Any:
    """A ``CalibrationDataReader`` feeding ``calibration`` in small batches."""
    from onnxruntime.quantization import CalibrationDataReader

    class ArrayReader(CalibrationDataReader):
        def __init__(self) -> None:
            self._batches = iter_batches(calibration, READER_BATCH)

        def get_next(self) -> dict[str, np.ndarray] | None:
            batch = next(self._batches, None)
            return None if batch is None else {input_name: batch}

    return ArrayReader()
