"""Rewrite ONNX 3-D convolutions exactly as 2-D convolutions over frames.

Why: ONNX Runtime's CPU kernels for 3-D convolutions are generic (im2col + GEMM) and its INT8
``QLinearConv`` has no fast 3-D path at all (measured 3-5x slower than FP32 on a 3D-CNN), while
2-D convolutions get the blocked FP32 (NCHWc) and the MLAS INT8 kernels. A Conv3D with kernel
``(kt, kh, kw)`` and temporal stride ``st`` (no temporal padding or dilation, one group) equals a
Conv2D over ``batch * T_out`` frames whose input channels are the ``kt`` frames each output
frame sees, stacked::

    x  (N, C, T, H, W) --Transpose--> (N, T, C, H, W) --Gather frames [t*st + dt]-->
       (N, T_out*kt, C, H, W) --Reshape--> (N*T_out, kt*C, H, W) --Conv2D--> [Relu] -->
       (N*T_out, O, H', W') --Reshape--> (N, T_out, O, H', W') --Transpose--> (N, O, T_out, H', W')

with the kernel ``(O, C, kt, kh, kw)`` reordered to ``(O, kt*C, kh, kw)``. It is the same sum
in another order, so outputs match to float rounding (~1e-7). Consecutive rewritten
convolutions (with a Relu between) stay in the frame-major layout, and a Transpose that feeds
another is folded into it, so only the layout changes at the ends of the Conv3D stack remain. A single ``Gather`` (not ``Slice`` + ``Concat``) moves the frames so that
the INT8 quantizer keeps the tensor in int8 across it. Convolutions that do not fit (temporal
padding or dilation, groups, unknown static shapes) are left as they are.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .onnx_graph import attrs, consumers, copied_nodes, drop_unused

FRAME_MAJOR = [0, 2, 1, 3, 4]  # (N, C, T, H, W) <-> (N, T, C, H, W); its own inverse


def rewrite_conv3d(proto: Any) -> int:
    """Rewrite every eligible 3-D Conv of ``proto`` (an ``onnx.ModelProto``) in place; return how many."""
    import onnx

    graph = proto.graph
    shapes = _static_shapes(onnx.shape_inference.infer_shapes(proto))
    inits = {i.name: i for i in graph.initializer}
    readers = consumers(graph)
    frame_major: dict[str, str] = {}  # NCTHW tensor -> the same values in NTCHW layout
    absorbed: set[str] = set()  # outputs of the Relus now inside a rewritten conv
    nodes, count = [], 0
    for node in copied_nodes(graph):
        if node.op_type == "Relu" and node.output[0] in absorbed:
            continue
        geometry = _geometry(node, inits, shapes)
        if geometry is None:
            nodes.append(node)
            continue
        relu = _single_relu(node, readers)
        if relu is not None:
            absorbed.add(relu.output[0])
        nodes.extend(_conv2d_nodes(node, relu, geometry, inits, graph, frame_major))
        count += 1
    del graph.node[:]
    graph.node.extend(nodes)
    _fold_transposes(graph)
    drop_unused(graph)
    return count


def _static_shapes(inferred: Any) -> dict[str, list[int | None]]:
    graph = inferred.graph
    return {v.name: [d.dim_value if d.HasField("dim_value") else None for d in v.type.tensor_type.shape.dim]
            for v in [*graph.value_info, *graph.input, *graph.output]}


def _geometry(node: Any, inits: dict[str, Any], shapes: dict[str, list[int | None]]) -> dict[str, Any] | None:
    """Kernel, strides and frame counts of a Conv3D that can be rewritten, else ``None``."""
    if node.op_type != "Conv" or len(node.input) < 2 or node.input[1] not in inits:
        return None
    kernel = list(inits[node.input[1]].dims)
    in_shape = shapes.get(node.input[0])
    if len(kernel) != 5 or not in_shape or len(in_shape) != 5 or None in in_shape[1:]:
        return None
    given = attrs(node)
    strides = list(given.get("strides", [1, 1, 1]))
    dilations = list(given.get("dilations", [1, 1, 1]))
    pads = list(given.get("pads", [0] * 6))
    if given.get("group", 1) != 1 or dilations[0] != 1 or pads[0] or pads[3] \
            or given.get("auto_pad", b"NOTSET") not in (b"NOTSET", b"VALID"):
        return None
    out_shape = shapes.get(node.output[0])
    if not out_shape or len(out_shape) != 5 or None in out_shape[1:]:
        return None
    return {"kt": kernel[2], "st": strides[0], "frames_out": out_shape[2], "in_hw": in_shape[3:],
            "out_hw": out_shape[3:],
            "strides": strides[1:], "dilations": dilations[1:], "pads": [pads[1], pads[2], pads[4], pads[5]]}


def _single_relu(node: Any, consumers: dict[str, list[Any]]) -> Any | None:
    users = consumers.get(node.output[0], [])
    return users[0] if len(users) == 1 and users[0].op_type == "Relu" else None


def _conv2d_nodes(conv: Any, relu: Any | None, geo: dict[str, Any], inits: dict[str, Any], graph: Any,
                  frame_major: dict[str, str]) -> list[Any]:
    """The nodes replacing ``conv`` (and the Relu after it); adds the new initializers to ``graph``."""
    from onnx import helper, numpy_helper

    kt, st, t_out = geo["kt"], geo["st"], geo["frames_out"]
    p = conv.name or conv.output[0]
    out_name = (relu or conv).output[0]
    weight = numpy_helper.to_array(inits[conv.input[1]])
    o, c, _, kh, kw = weight.shape
    frames = np.array([t * st + dt for t in range(t_out) for dt in range(kt)], np.int64)
    new_inits = {
        f"{p}/w2d": weight.transpose(0, 2, 1, 3, 4).reshape(o, kt * c, kh, kw),
        f"{p}/frames": frames,
        f"{p}/shape_in": np.array([-1, kt * c, *geo["in_hw"]], np.int64),
        f"{p}/shape_out": np.array([-1, t_out, o, *geo["out_hw"]], np.int64),
    }
    graph.initializer.extend(numpy_helper.from_array(v, k) for k, v in new_inits.items())
    nodes = []
    source = frame_major.get(conv.input[0])
    if source is None:
        source = f"{p}/ntchw"
        nodes.append(helper.make_node("Transpose", [conv.input[0]], [source], perm=FRAME_MAJOR, name=source))
    nodes += [helper.make_node("Gather", [source, f"{p}/frames"], [f"{p}/gathered"], axis=1, name=f"{p}/gather"),
              helper.make_node("Reshape", [f"{p}/gathered", f"{p}/shape_in"], [f"{p}/stacked"], name=f"{p}/stack")]
    conv_inputs = [f"{p}/stacked", f"{p}/w2d", *conv.input[2:3]]
    nodes.append(helper.make_node("Conv", conv_inputs, [f"{p}/conv2d"], name=f"{p}/conv2d",
                                  kernel_shape=[kh, kw], strides=geo["strides"], dilations=geo["dilations"],
                                  pads=geo["pads"]))
    last = f"{p}/conv2d"
    if relu is not None:
        nodes.append(helper.make_node("Relu", [last], [f"{p}/relu"], name=f"{p}/relu"))
        last = f"{p}/relu"
    nodes += [helper.make_node("Reshape", [last, f"{p}/shape_out"], [f"{p}/out_ntchw"], name=f"{p}/unstack"),
              helper.make_node("Transpose", [f"{p}/out_ntchw"], [out_name], perm=FRAME_MAJOR, name=f"{p}/to_ncthw")]
    frame_major[out_name] = f"{p}/out_ntchw"
    return nodes


def _fold_transposes(graph: Any) -> None:
    """Make each Transpose fed by another Transpose read that one's input, with the composed perm."""
    producers = {o: n for n in graph.node for o in n.output}
    for node in graph.node:
        first = producers.get(node.input[0]) if node.op_type == "Transpose" else None
        if first is not None and first.op_type == "Transpose":
            outer, inner = list(attrs(first)["perm"]), list(attrs(node)["perm"])
            node.input[0] = first.input[0]
            del node.attribute[:]
            node.attribute.append(_perm([outer[i] for i in inner]))


def _perm(values: list[int]) -> Any:
    from onnx import helper

    return helper.make_attribute("perm", values)

