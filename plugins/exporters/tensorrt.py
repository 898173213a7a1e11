"""TensorRT engine (FP32, FP16 or INT8) as a portable bundle built on the target GPU.

TensorRT engines only run on the GPU model and TensorRT version that built them, so this
target writes ``tensorrt_<precision>/``: ``model.onnx`` (dynamic batch axis), an optimisation
profile spanning ``deploy.batch_sizes``, INT8 calibration batches ``calib/batch_NNN.npy`` taken
from ``ctx.calibration`` (training split), ``metadata.json``, ``build_engine.py`` (standalone
TensorRT 10 builder) and ``build_engine.sh`` (the equivalent ``trtexec`` command). Where
``tensorrt``, cuda-python and a CUDA GPU are present the engine is built right away; elsewhere
the export is ``deferred`` (an error when ``ctx.strict``) and ``gaitrun engine build BUNDLE``
or ``python3 build_engine.py`` builds it on the target.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

PRECISIONS = frozenset({"fp32", "fp16", "int8"})


class Params(BaseModel):
    """TensorRT-specific options."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    opset: int = Field(17, ge=13, le=18, description="ONNX opset of the bundled graph")
    workspace_mb: int = Field(1024, ge=16, le=65536, description="builder workspace memory limit (MiB)")
    calibration_batch: int = Field(8, ge=1, le=1024,
                                   description="int8: largest calibration batch (batches are equal-sized)")


def export(model: Any, *, params: Params, ctx: Any) -> dict[str, Any]:
    """Write the bundle in ``ctx.out_dir``; build the engine when this machine can."""
    from gaitrun.atomic import atomic_dir
    from gaitrun.errors import StageError
    from gaitrun.export import export_result, trt_builder
    from gaitrun.export.tensorrt_bundle import build_bundle_engine

    bundle = ctx.out_dir / f"tensorrt_{ctx.precision}"
    with atomic_dir(bundle) as tmp:
        _write(model, tmp, params, ctx)
    reason = trt_builder.missing_requirement()
    if reason and ctx.strict:
        raise StageError("export", f"cannot build the TensorRT engine here ({reason}); run "
                                   f"`gaitrun engine build {bundle}` on the target device")
    engine = None if reason else build_bundle_engine(bundle, workspace_mb=params.workspace_mb)
    return export_result("tensorrt", ctx, model=engine, files=sorted(p for p in bundle.rglob("*") if p.is_file()),
                         status="deferred" if reason else "done", reason=reason,
                         bundle=bundle.name, build_command=f"gaitrun engine build {bundle}")


def _write(model: Any, folder: Any, params: Params, ctx: Any) -> None:
    """The bundle's ONNX model, then its metadata, calibration batches and build scripts."""
    from gaitrun.errors import StageError
    from gaitrun.export.onnx_convert import input_signature, keras_to_onnx, output_names
    from gaitrun.export.tensorrt_bundle import MODEL, write_bundle

    onnx_path = folder / MODEL
    keras_to_onnx(model, onnx_path, input_name=ctx.input_name, opset=params.opset)
    _, dims = input_signature(onnx_path)
    if any(d is None for d in dims[1:]):
        raise StageError("export", f"tensorrt needs every input axis but the batch fixed; the model's input "
                                   f"is {['batch', *dims[1:]]}: give the architecture a fixed input shape")
    write_bundle(folder, input_name=ctx.input_name, input_shape=[int(d) for d in dims[1:]],
                 output_names=output_names(onnx_path), precision=ctx.precision,
                 batch_sizes=ctx.batch_sizes, calibration=ctx.calibration,
                 calibration_batch=params.calibration_batch, workspace_mb=params.workspace_mb,
                 labels=list(ctx.labels), normalisation=dict(ctx.normalisation), opset=params.opset)
