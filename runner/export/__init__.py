"""Deployment export: what every exporter plugin receives, plus the shared conversion tools.

An exporter plugin (``gaitrun.plugins.exporters.<target>``) is called as
``export(model, *, params, ctx)`` where ``params`` holds its target-specific recipe keys and
``ctx`` is the :class:`ExportContext` below, holding the shared ``deploy`` keys and what the
run knows about the model's inputs. Sub-modules (imported only when needed):

- ``onnx_convert``  Keras -> ONNX (dynamic batch axis), FP16 conversion
- ``conv3d_as_2d``  exact rewrite of ONNX Conv3D nodes as Conv2D over frames (ONNX Runtime)
- ``pad_channels``  exact zero-padding of ONNX conv channels to whole blocks of 8 (ONNX Runtime)
- ``onnx_graph``    helpers the two ONNX rewrites share
- ``keras_conv3d``  the same rewrite on a Keras model, before TFLite conversion
- ``quantize``      ONNX INT8 static quantization calibrated on training samples
- ``parity``        run an exported model, compare it with the Keras model, gate on ``max_drop``
- ``tensorrt_bundle`` the portable TensorRT bundle and :func:`build_bundle_engine`
- ``trt_builder``   the standalone engine builder copied into every bundle
- ``files``         atomic writes
- ``arrays``        batching helpers
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import StageError
from ..registry import PRECISIONS
from .files import file_record

if TYPE_CHECKING:
    import numpy as np

__all__ = ["ExportContext", "build_bundle_engine", "check_calibration", "export_result"]


@dataclass(frozen=True)
class ExportContext:
    """Everything an exporter needs besides the model and its own params.

    ``calibration`` holds samples drawn from the TRAINING split, already preprocessed exactly
    like model inputs (shape ``(n, *input_shape)``, float32); it may be empty unless the
    precision is ``int8``. ``strict`` turns a deferred step (e.g. no GPU to build a TensorRT
    engine) into an error.
    """

    out_dir: Path
    precision: str
    batch_sizes: tuple[int, ...]
    calibration: np.ndarray
    input_name: str
    labels: list[str]
    normalisation: dict[str, Any]
    strict: bool = False

    def __post_init__(self) -> None:
        if self.precision not in PRECISIONS:
            raise StageError("export", f"precision {self.precision!r} is not one of {list(PRECISIONS)}")
        if not self.batch_sizes or any(int(b) < 1 for b in self.batch_sizes):
            raise StageError("export", f"batch_sizes must be positive integers, got {self.batch_sizes}")
        if self.precision == "int8" and len(self.calibration) == 0:
            raise StageError("export", "int8 export needs calibration samples from the training split; "
                                       "set deploy.calibration_samples >= 1")


def check_calibration(ctx: ExportContext, model: Any) -> None:
    """For int8, refuse calibration samples whose shape is not the model's input shape (the
    export stage checks this once, before any exporter runs; the recipe check has already
    matched the precision with the exporter's declared ``PRECISIONS``)."""
    if ctx.precision != "int8":
        return
    expected = tuple(model.inputs[0].shape[1:])
    got = tuple(ctx.calibration.shape[1:])
    if len(got) != len(expected) or any(e is not None and e != g for e, g in zip(expected, got, strict=False)):
        raise StageError("export", f"calibration samples have shape {got} but the model expects "
                                   f"{expected}: they must be preprocessed exactly like model inputs")


def export_result(target: str, ctx: ExportContext, *, model: Path | None, files: list[Path],
                  status: str = "done", reason: str | None = None, **extra: Any) -> dict[str, Any]:
    """The dict an exporter returns (paths relative to ``ctx.out_dir``).

    ``model`` is the artifact the parity check and benchmark load (``None`` when nothing
    runnable here was produced, e.g. a deferred TensorRT engine); ``files`` lists everything
    written, with sizes; ``status`` is ``done`` or ``deferred`` (then ``reason`` says why).
    """
    return {"target": target, "status": status, "reason": reason, "precision": ctx.precision,
            "batch_sizes": list(ctx.batch_sizes), "input_name": ctx.input_name,
            "model": None if model is None else model.relative_to(ctx.out_dir).as_posix(),
            "files": [file_record(ctx.out_dir, f) for f in files], **extra}


def build_bundle_engine(bundle_dir: str | Path, *, workspace_mb: int | None = None) -> Path:
    """Build ``model.engine`` inside a TensorRT bundle on this machine (``gaitrun engine build``).

    ``workspace_mb`` defaults to the bundle's ``metadata.json``. Raises ``DataError`` for a
    missing or incomplete bundle and ``StageError`` when TensorRT, cuda-python or a GPU is
    missing or the build fails.
    """
    from .tensorrt_bundle import build_bundle_engine as build

    return build(bundle_dir, workspace_mb=workspace_mb)
