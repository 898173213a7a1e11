"""TensorFlow Lite (FP32, FP16 or INT8) for phones and microcontroller-class boards.

Converted with ``tf.lite.TFLiteConverter`` from a SavedModel traced by Keras 3 (dynamic batch
axis; resize the input tensor to the batch you run):

- fp32: plain conversion;
- fp16: float16 weights (``supported_types = [tf.float16]``), float32 maths on CPU;
- int8: full-integer kernels (``TFLITE_BUILTINS_INT8``), activation ranges from a
  representative dataset fed one sample at a time from ``ctx.calibration``. Inputs and outputs
  stay float32 (the converter adds quantize/dequantize at the edges): the parity check then
  feeds every variant the same float inputs and compares float outputs, with no scale or
  zero-point bookkeeping.

Every precision first computes Conv3D layers exactly as Conv2D over stacked frames
(``conv3d_as_2d``, see ``gaitrun.export.keras_conv3d``): TFLite has no integer CONV_3D kernel
and XNNPACK takes no CONV_3D, so without it an "int8" 3D-CNN keeps float CONV_3D ops.

Writes ``model.<precision>.tflite``.
"""

from __future__ import annotations

import re
import tempfile
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

PRECISIONS = frozenset({"fp32", "fp16", "int8"})


class Params(BaseModel):
    """TFLite-specific options."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    conv3d_as_2d: bool = Field(True, description="compute Conv3D exactly as Conv2D over frames "
                                                 "(integer and XNNPACK kernels in TFLite)")


def export(model: Any, *, params: Params, ctx: Any) -> dict[str, Any]:
    """Export ``model`` to ``ctx.out_dir/model.<precision>.tflite``."""
    from gaitrun.atomic import write_bytes
    from gaitrun.errors import StageError
    from gaitrun.export import export_result
    from gaitrun.export.keras_conv3d import with_conv3d_as_2d

    if params.conv3d_as_2d:
        model, _ = with_conv3d_as_2d(model)
    ctx.out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=ctx.out_dir, prefix=".tflite.", suffix=".tmp") as work:
        try:
            model.export(work, format="tf_saved_model", verbose=False)
            flatbuffer = _converter(work, ctx).convert()
        except Exception as exc:  # converter errors are MLIR dumps of many kinds
            raise StageError("export", f"TFLite {ctx.precision} conversion failed: {_summary(exc)}") from exc
    final = ctx.out_dir / f"model.{ctx.precision}.tflite"
    write_bytes(final, flatbuffer)
    return export_result("tflite", ctx, model=final, files=[final])


def _summary(exc: Exception) -> str:
    """One line out of the converter's MLIR dump: the unsupported ops when that is the cause."""
    text = str(exc)
    ops = re.search(r"TF Select ops: ([^\n]+)", text)
    if ops:
        return (f"TFLite has no built-in kernel for {ops.group(1)}; use the onnx target "
                "or replace those layers (e.g. strided Conv3D instead of MaxPooling3D)")
    return f"{type(exc).__name__}: {text.strip().splitlines()[0][:300] if text.strip() else ''}"


def _converter(saved_model_dir: str, ctx: Any) -> Any:
    """A TFLiteConverter configured for ``ctx.precision``."""
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_saved_model(saved_model_dir)
    if ctx.precision == "fp16":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    elif ctx.precision == "int8":
        samples = ctx.calibration.astype("float32")
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = lambda: ([s[None]] for s in samples)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    return converter


def runtime(path: Any, *, threads: int = 0) -> Any:
    """How the artefact runs on this machine (the parity gate and the bench call it)."""
    from gaitrun.export.runtimes import tflite

    return tflite(path, threads=threads)
