"""ONNX (FP32, FP16 or INT8 QDQ) with a dynamic batch axis, for ONNX Runtime and other runtimes.

- fp32: Keras 3's own ONNX exporter (it drives tf2onnx for Keras 3 models; see
  ``gaitrun.export.onnx_convert`` for why not ``tf2onnx.convert.from_keras``).
- fp16: onnxconverter-common's ``convert_float_to_float16`` with float32 inputs/outputs kept,
  so callers feed and read float32 whatever the precision.
- int8: ONNX Runtime static quantization, QDQ format, u8 activations and per-channel s8
  weights, activation ranges calibrated on ``ctx.calibration`` (training-split samples) after
  ``quant_pre_process``.

Every precision rewrites 3-D convolutions exactly as 2-D ones over frames (``conv3d_as_2d``;
outputs equal to ~1e-7): ONNX Runtime's FP32 Conv3D is 2x slower than the rewrite and its
INT8 Conv3D has no fast kernel at all (4-5x slower than FP32). INT8 graphs keep the frames
channels last between convolutions, as ONNX Runtime's ``QLinearConv`` reads them (``conv_layout:
auto``; 1.2-1.4x faster on the main job), FP32 and FP16 graphs channels first, as its blocked FP32
kernels read them. FP32 and FP16 graphs also get zero input channels added to 2-D convolutions
whose channel count is not a multiple of 8 (``pad_channels``, exact) where that is measured
to make the graph faster (``measured``, the default: ``gaitrun.export.pad_policy``): ONNX
Runtime's blocked x86 kernel needs whole blocks, and a conv that misses it (50 stacked flow
channels) can run 2-3x slower per FLOP, but padding a pruned layer's filters back up can also
undo the pruning.
Every precision folds consecutive fully connected layers with no activation between them into
one matrix (``fold_linear``; cnn2d_bmvc's fc1 -> embedding -> fc2: 16 MB of weights become 2 MB).

Writes ``model.<precision>.onnx``; the input is named ``ctx.input_name`` and its first axis
``batch`` in every variant.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

PRECISIONS = frozenset({"fp32", "fp16", "int8"})


class Params(BaseModel):
    """ONNX-specific options."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    opset: int = Field(17, ge=13, le=18, description="ONNX opset of the exported graph")
    calibration_method: Literal["minmax", "entropy", "percentile"] = Field(
        "minmax", description="int8: how activation ranges are taken from the calibration samples")
    per_channel: bool = Field(True, description="int8: one weight scale per output channel")
    activation_type: Literal["uint8", "int8"] = Field(
        "uint8", description="int8: activation type (uint8 is faster on x86 CPUs without VNNI)")
    conv3d_as_2d: bool = Field(True, description="rewrite Conv3D exactly as Conv2D over frames "
                                                 "(faster in ONNX Runtime)")
    conv_layout: Literal["auto", "channels_first", "channels_last"] = Field(
        "auto", description="layout of the rewritten Conv3D frames: channels_last suits ONNX Runtime's "
                            "INT8 kernels, channels_first its FP32 ones; auto picks by precision")
    pad_channels: Literal["measured", "always", "never"] = Field(
        "measured", description="fp32/fp16: zero-pad conv input channels to a multiple of 8 (exact): where "
                                "it makes the graph faster, timed at export (measured), always, or never")

    @field_validator("pad_channels", mode="before")
    @classmethod
    def _from_bool(cls, value: Any) -> Any:
        """Recipes of earlier versions said true (pad every eligible conv) or false."""
        return {True: "always", False: "never"}.get(value, value) if isinstance(value, bool) else value

    fold_linear: bool = Field(True, description="fold consecutive linear layers (no activation between) "
                                                "into one matrix, and a BatchNorm into the convolution "
                                                "before it (exact up to float rounding; faster)")


def export(model: Any, *, params: Params, ctx: Any) -> dict[str, Any]:
    """Export ``model`` to ``ctx.out_dir/model.<precision>.onnx``."""
    from gaitrun.export import export_result
    from gaitrun.export.onnx_convert import keras_to_onnx, to_fp16
    from gaitrun.export.quantize import quantize_int8

    ctx.out_dir.mkdir(parents=True, exist_ok=True)
    final = ctx.out_dir / f"model.{ctx.precision}.onnx"
    channels_last = params.conv_layout == "channels_last" or (params.conv_layout == "auto" and ctx.precision == "int8")
    convert = dict(input_name=ctx.input_name, opset=params.opset, conv3d_as_2d=params.conv3d_as_2d,
                   channels_last=channels_last, pad_channels=params.pad_channels if ctx.precision != "int8" else "never",
                   fold_linear=params.fold_linear)
    if ctx.precision == "fp32":
        padding = keras_to_onnx(model, final, **convert)
    else:
        with tempfile.TemporaryDirectory(dir=ctx.out_dir, prefix=".onnx.", suffix=".tmp") as work:
            fp32 = Path(work) / "model.fp32.onnx"
            padding = keras_to_onnx(model, fp32, **convert)
            if ctx.precision == "fp16":
                to_fp16(fp32, final)
            else:
                quantize_int8(fp32, final, calibration=ctx.calibration, input_name=ctx.input_name,
                              method=params.calibration_method, per_channel=params.per_channel,
                              activation_type=params.activation_type)
    return export_result("onnx", ctx, model=final, files=[final], opset=params.opset, padding=padding)


def runtime(path: Any, *, threads: int = 0) -> Any:
    """How the artefact runs on this machine (the parity gate and the bench call it)."""
    from gaitrun.export.runtimes import onnx

    return onnx(path, threads=threads)
