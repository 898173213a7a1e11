"""Keras -> ONNX with a dynamic batch axis, and ONNX FP32 -> FP16.

Why Keras 3's own exporter (``model.export(path, format="onnx")``) rather than calling
``tf2onnx.convert.from_keras``: Keras' exporter traces the model's ``call`` into a concrete
function with a ``None`` batch dimension and hands it to ``tf2onnx.convert.from_function``,
patching tf2onnx for NumPy 2 first. So it *is* tf2onnx, driven the way Keras 3 models need
(``from_keras`` targets tf.keras 2 models and needs that NumPy patch applied by hand). With
TF 2.21 / Keras 3.15 it gives a graph whose batch axis is symbolic and whose outputs equal
Keras' to ~1e-7. We then rename the graph input to the run's ``input_name`` and the batch
axis to ``batch`` so TensorRT profiles and ``trtexec --minShapes=<input>:...`` read naturally.
With ``conv3d_as_2d`` the 3-D convolutions are rewritten exactly as 2-D ones for ONNX Runtime's
faster CPU kernels (see ``gaitrun.export.conv3d_as_2d``); TensorRT has fast 3-D kernels and
gets the graph as converted. With ``pad_channels`` the 2-D convolutions whose input channel count
misses ONNX Runtime's blocked kernel get zero channels added (``gaitrun.export.pad_channels``).
With ``fold_linear`` consecutive fully connected layers with no activation between them become
one (``gaitrun.export.fold_linear``), and a BatchNormalization's scale and shift after a
convolution go into its weights (``gaitrun.export.fold_batchnorm``).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from ..atomic import atomic_path
from ..errors import StageError

BATCH_AXIS = "batch"


def keras_to_onnx(model: Any, final: Path, *, input_name: str, opset: int, conv3d_as_2d: bool = False,
                  channels_last: bool = False, pad_channels: bool | str = False,
                  fold_linear: bool = False) -> dict[str, Any]:
    """Convert a single-input Keras model to ONNX at ``final`` (atomically). ``channels_last``: the
    rewritten convolutions keep their frames in NHWC (for INT8). ``pad_channels``:
    ``True``/``"always"`` pads every eligible conv, ``"measured"`` only those whose padding makes
    the graph faster (``gaitrun.export.pad_policy``); returns what that measured."""
    import onnx

    from .conv3d_as_2d import rewrite_conv3d
    from .fold_batchnorm import fold_conv_scale_shift
    from .fold_linear import fold_linear_chains
    from .pad_channels import pad_conv_inputs
    from .pad_policy import measured_padding

    _call_once(model)
    with atomic_path(final) as tmp:
        try:
            model.export(str(tmp), format="onnx", opset_version=opset, verbose=False)
        except Exception as exc:  # the converter's own errors are too varied to list
            raise StageError("export", f"Keras -> ONNX conversion failed ({type(exc).__name__}: {exc}); "
                                       f"try another deploy.opset or the saved_model target") from exc
        proto = onnx.load(str(tmp))
        _name_input(proto, input_name)
        _name_batch_axis(proto)
        if fold_linear:
            fold_conv_scale_shift(proto)  # first: conv3d_as_2d then sees Conv -> Relu
            fold_linear_chains(proto)
        padding: dict[str, Any] = {}
        finish = partial(rewrite_conv3d, channels_last=channels_last) if conv3d_as_2d else (lambda p: p)
        if pad_channels == "measured":  # first: a Conv3D is padded as the Conv2D it becomes needs
            padding = measured_padding(proto, conv3d_as_2d=conv3d_as_2d, finish=_rewritten(finish))
        elif pad_channels and pad_channels != "never":
            pad_conv_inputs(proto, conv3d_as_2d=conv3d_as_2d)
        finish(proto)
        onnx.checker.check_model(proto)
        onnx.save(proto, str(tmp))
    return padding


def _rewritten(rewrite: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """``rewrite`` applied in place to a graph, which is then returned."""
    def apply(proto: Any) -> Any:
        rewrite(proto)
        return proto

    return apply


def to_fp16(src: Path, final: Path) -> None:
    """Convert an FP32 ONNX model to FP16 weights and maths, keeping float32 inputs/outputs."""
    import onnx

    try:
        from onnxconverter_common import float16
    except ImportError as exc:
        raise StageError("export", "onnx fp16 export needs onnxconverter-common: "
                                   "pip install onnxconverter-common") from exc
    proto = float16.convert_float_to_float16(onnx.load(str(src)), keep_io_types=True)
    with atomic_path(final) as tmp:
        onnx.save(proto, str(tmp))


def input_signature(path: Path) -> tuple[str, list[int | None]]:
    """The ONNX model's single input: its name and dims (``None`` for a symbolic dim)."""
    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph
    (inp,) = _graph_inputs(graph)
    dims = [d.dim_value if d.HasField("dim_value") else None for d in inp.type.tensor_type.shape.dim]
    return inp.name, dims


def output_names(path: Path) -> list[str]:
    """The ONNX model's output tensor names."""
    import onnx

    return [o.name for o in onnx.load(str(path), load_external_data=False).graph.output]


def _call_once(model: Any) -> None:
    """Keras refuses to export a model that was never called (e.g. freshly built)."""
    import numpy as np

    inputs = getattr(model, "inputs", None) or []
    if len(inputs) != 1:
        raise StageError("export", f"exporters handle single-input models; this one has {len(inputs)} inputs")
    shape = [1 if d is None else int(d) for d in inputs[0].shape]
    shape[0] = 1
    model(np.zeros(shape, dtype="float32"), training=False)


def _graph_inputs(graph: Any) -> list[Any]:
    initializers = {i.name for i in graph.initializer}
    return [i for i in graph.input if i.name not in initializers]


def _name_input(proto: Any, input_name: str) -> None:
    inputs = _graph_inputs(proto.graph)
    if len(inputs) != 1:
        raise StageError("export", f"the ONNX graph has {len(inputs)} inputs; exporters handle one")
    old = inputs[0].name
    if old == input_name:
        return
    for node in proto.graph.node:
        node.input[:] = [input_name if name == old else name for name in node.input]
    inputs[0].name = input_name


def _name_batch_axis(proto: Any) -> None:
    for value in [*_graph_inputs(proto.graph), *proto.graph.output]:
        dims = value.type.tensor_type.shape.dim
        if not dims or dims[0].HasField("dim_value"):
            raise StageError("export", f"ONNX tensor {value.name!r} has no dynamic batch axis; "
                                       "the exporter needs a model whose batch dimension is None")
        dims[0].dim_param = BATCH_AXIS
