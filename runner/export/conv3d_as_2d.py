"""Rewrite ONNX 3-D convolutions exactly as 2-D convolutions over frames.

Why: ONNX Runtime's CPU kernels for 3-D convolutions are generic (im2col + GEMM) and its INT8
``QLinearConv`` has no fast 3-D path at all (measured 3-5x slower than FP32 on a 3D-CNN, and
14x slower than the rewrite on the main job's first layer), while 2-D convolutions get the
blocked FP32 (NCHWc) and the MLAS INT8 kernels. A Conv3D with kernel ``(kt, kh, kw)`` and
temporal stride ``st`` (no temporal padding or dilation, one group) equals a Conv2D over
``batch * T_out`` frames whose input channels are the ``kt`` frames each output frame sees,
stacked. Two layouts, one per kind of kernel:

- channels first (FP32, FP16: ONNX Runtime's blocked NCHWc kernels read NCHW)::

    x (N, C, T, H, W) --Transpose--> (N, T, C, H, W) --Gather frames [t*st + dt]-->
      (N, T_out*kt, C, H, W) --Reshape--> (N*T_out, kt*C, H, W) --Conv2D--> [Relu] -->
      (N*T_out, O, H', W') --Reshape--> (N, T_out, O, H', W') --Transpose--> (N, O, T_out, H', W')

- channels last (INT8: ONNX Runtime runs ``QLinearConv`` in NHWC and puts a Transpose on each
  side of it; the ones written here cancel those, so between convolutions nothing but the frame
  stacking moves data)::

    x (N, C, T, H, W) --Transpose--> (N, T, H, W, C) --Gather frames--> (N, T_out*kt, H, W, C)
      --Reshape, Transpose--> (N*T_out, H, W, kt, C) --Reshape--> (N*T_out, H, W, kt*C)
      --Transpose--> NCHW --Conv2D--> [Relu] --Transpose--> (N*T_out, H', W', O)
      --Reshape--> (N, T_out, H', W', O) --Transpose--> (N, O, T_out, H', W')

with the kernel ``(O, C, kt, kh, kw)`` reordered to ``(O, kt*C, kh, kw)``. Channels last, a conv
whose stacked channels are not a multiple of 4 and whose width stride ``s`` > 1 reads blocks of
``2s`` (or ``s``) columns as channels and computes 2 (or 1) output columns per block (``_column_blocks``:
Reshapes, and a kernel with zeros, stepping one block), so that ONNX Runtime's fast INT8 kernel
applies to it. It is the same sum
in another order, so outputs match to float rounding (~1e-7), and the INT8 graphs of both
layouts compute the same integer sums (identical outputs on the main job; where the column blocks
bring in the faster kernel, a requantised value may round one step differently). Consecutive rewritten convolutions (with a Relu between) stay
in the frame-major layout, and a Transpose that feeds another is folded into it (dropped when
they cancel), so only the layout changes at the ends of the Conv3D stack remain. A single
``Gather`` (not ``Slice`` + ``Concat``) moves the frames so that the INT8 quantizer keeps the
tensor in int8 across it. Convolutions that do not fit (temporal padding or dilation, groups,
unknown static shapes) are left as they are.

Measured with ``bench/conv_layout.py`` on the main job's three seeds (2-core Xeon with AVX-512
VNNI, 2 threads, p50, the same trained models exported both ways): channels last, with the first
layer's column blocks, took the pruned INT8 model from 1.48-1.52 to 0.83-0.87 ms at batch 1 and
from 11.1-11.5 to 5.5-5.6 ms at batch 8, the unpruned one from 2.25-2.29 to 1.42-1.46 ms and from
17.5-18.9 to 9.8-10.9 ms (without the column blocks: pruned 1.10-1.18 and 7.4-8.3 ms, unpruned
1.66-1.75 and 11.2-12.7 ms, on the previous trainings of the same seeds). In FP32 it
was 1.3-1.5x slower (``--precision fp32``, one seed: unpruned 3.5 -> 4.5 ms at batch 1, pruned
1.6 -> 2.2 ms), hence one layout per precision.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .onnx_graph import add_initializer, attrs, consumers, copied_nodes, drop_unused, producers

# Frame-major layouts, as permutations of the ONNX Conv3D layout (N, C, T, H, W)
TO_NTCHW, FROM_NTCHW = [0, 2, 1, 3, 4], [0, 2, 1, 3, 4]
TO_NTHWC, FROM_NTHWC = [0, 2, 3, 4, 1], [0, 4, 1, 2, 3]


def rewrite_conv3d(proto: Any, *, channels_last: bool = False) -> int:
    """Rewrite every eligible 3-D Conv of ``proto`` (an ``onnx.ModelProto``) in place; return how
    many. ``channels_last``: keep the frames in (N, T, H, W, C) between convolutions (for INT8)."""
    import onnx

    graph = proto.graph
    shapes = _static_shapes(onnx.shape_inference.infer_shapes(proto))
    inits = {i.name: i for i in graph.initializer}
    rewrite = _Rewrite(graph, inits, set(inits) | {n for node in graph.node for n in (*node.input, *node.output)})
    readers = consumers(graph)
    absorbed: set[str] = set()  # outputs of the Relus now inside a rewritten conv
    build = _nhwc_nodes if channels_last else _nchw_nodes
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
        nodes.extend(build(node, relu, geometry, rewrite))
        count += 1
    del graph.node[:]
    graph.node.extend(nodes)
    _fold_transposes(graph)
    drop_unused(graph)
    return count


@dataclass
class _Rewrite:
    """What the conv rewrites share: the graph, its initializers by name, the names taken, and
    for each rewritten conv's output (N, C, T, H, W) the same values in the frame-major layout."""

    graph: Any
    inits: dict[str, Any]
    taken: set[str]
    frame_major: dict[str, str] = field(default_factory=dict)

    def constants(self, prefix: str, values: dict[str, Any]) -> dict[str, str]:
        """Add each value (int64 if a list) as an initializer named after ``<prefix>/<key>``;
        return the names by key."""
        return {key: add_initializer(self.graph, self.inits, self.taken, f"{prefix}/{key}",
                                     np.asarray(value, np.int64) if isinstance(value, list) else value)
                for key, value in values.items()}


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


def _nchw_nodes(conv: Any, relu: Any | None, geo: dict[str, Any], rw: _Rewrite) -> list[Any]:
    """The nodes replacing ``conv`` (and the Relu after it), frames in (N, T, C, H, W)."""
    from onnx import helper

    p, kt, t_out = _prefix(conv), geo["kt"], geo["frames_out"]
    o, c, kh, kw = _kernel_dims(conv, rw.inits)
    names = rw.constants(p, {
        "w2d": _stacked_kernel(conv, rw.inits), "frames": _frame_indices(geo),
        "shape_in": [-1, kt * c, *geo["in_hw"]], "shape_out": [-1, t_out, o, *geo["out_hw"]]})
    nodes, source = _frame_major_input(conv, p, rw.frame_major, TO_NTCHW)
    nodes += [helper.make_node("Gather", [source, names["frames"]], [f"{p}/gathered"], axis=1, name=f"{p}/gather"),
              helper.make_node("Reshape", [f"{p}/gathered", names["shape_in"]], [f"{p}/stacked"], name=f"{p}/stack")]
    last = _conv_and_relu(nodes, conv, relu, geo, f"{p}/stacked", names["w2d"], kh, kw)
    nodes.append(helper.make_node("Reshape", [last, names["shape_out"]], [f"{p}/out_ntchw"], name=f"{p}/unstack"))
    return nodes + _back_to_ncthw(conv, relu, p, f"{p}/out_ntchw", FROM_NTCHW, rw.frame_major)


def _nhwc_nodes(conv: Any, relu: Any | None, geo: dict[str, Any], rw: _Rewrite) -> list[Any]:
    """The nodes replacing ``conv`` (and the Relu after it), frames in (N, T, H, W, C)."""
    from onnx import helper

    p, kt, t_out = _prefix(conv), geo["kt"], geo["frames_out"]
    o, c, kh, kw = _kernel_dims(conv, rw.inits)
    h, w = geo["in_hw"]
    stride, phases = _column_blocks(geo, kt * c, o, kw, has_bias_constant=len(conv.input) < 3 or conv.input[2] in rw.inits)
    extra = {}
    if stride > 1:  # (W, C) -> (W / B, B * C), B = stride * phases, is a Reshape; the conv steps 1 block
        block = stride * phases
        geo = {**geo, "strides": [geo["strides"][0], 1]}
        w2d, kw = _blocked_kernel(_stacked_kernel(conv, rw.inits), kt, c, stride, phases)
        w, c = w // block, c * block
        if phases > 1 and len(conv.input) > 2:  # each phase's filters have the bias too
            from onnx import numpy_helper

            extra["bias"] = np.tile(numpy_helper.to_array(rw.inits[conv.input[2]]), phases)
    else:
        w2d = _stacked_kernel(conv, rw.inits)
    names = rw.constants(p, {
        "w2d": w2d, "frames": _frame_indices(geo),
        "shape_taps": [-1, kt, h, w, c], "shape_in": [-1, h, w, kt * c], "shape_out": [-1, t_out, *geo["out_hw"], o],
        **extra})
    nodes, source = _frame_major_input(conv, p, rw.frame_major, TO_NTHWC)
    nodes.append(helper.make_node("Gather", [source, names["frames"]], [f"{p}/gathered"], axis=1, name=f"{p}/gather"))
    gathered = f"{p}/gathered"
    if kt > 1:  # each pixel's kt frames next to each other: (N*T_out, kt, H, W, C) -> (N*T_out, H, W, kt, C)
        nodes += [helper.make_node("Reshape", [gathered, names["shape_taps"]], [f"{p}/taps"], name=f"{p}/taps"),
                  helper.make_node("Transpose", [f"{p}/taps"], [f"{p}/pixel_major"], perm=[0, 2, 3, 1, 4],
                                   name=f"{p}/pixel_major")]
        gathered = f"{p}/pixel_major"
    nodes += [helper.make_node("Reshape", [gathered, names["shape_in"]], [f"{p}/stacked"], name=f"{p}/stack"),
              helper.make_node("Transpose", [f"{p}/stacked"], [f"{p}/nchw"], perm=[0, 3, 1, 2], name=f"{p}/nchw")]
    last = _conv_and_relu(nodes, conv, relu, geo, f"{p}/nchw", names["w2d"], kh, kw, bias=names.get("bias"))
    nodes += [helper.make_node("Transpose", [last], [f"{p}/nhwc"], perm=[0, 2, 3, 1], name=f"{p}/nhwc"),
              helper.make_node("Reshape", [f"{p}/nhwc", names["shape_out"]], [f"{p}/out_nthwc"], name=f"{p}/unstack")]
    return nodes + _back_to_ncthw(conv, relu, p, f"{p}/out_nthwc", FROM_NTHWC, rw.frame_major)


def _prefix(conv: Any) -> str:
    return conv.name or conv.output[0]


def _kernel_dims(conv: Any, inits: dict[str, Any]) -> tuple[int, int, int, int]:
    o, c, _, kh, kw = inits[conv.input[1]].dims
    return o, c, kh, kw


def _stacked_kernel(conv: Any, inits: dict[str, Any]) -> np.ndarray:
    """(O, C, kt, kh, kw) -> (O, kt*C, kh, kw): input channel ``dt*C + c`` is channel c of frame t*st + dt."""
    from onnx import numpy_helper

    weight = numpy_helper.to_array(inits[conv.input[1]])
    o, c, kt, kh, kw = weight.shape
    return weight.transpose(0, 2, 1, 3, 4).reshape(o, kt * c, kh, kw)


def _column_blocks(geo: dict[str, Any], channels: int, filters: int, kw: int, *,
                   has_bias_constant: bool) -> tuple[int, int]:
    """``(s, k)``: read blocks of ``B = s*k`` columns as channels (``s`` the width stride) and
    compute ``k`` neighbouring output columns per block, one per group of filters; ``(1, 1)``:
    leave the conv as it is.

    ONNX Runtime's fast INT8 convolution (MLAS's symmetric indirect kernel) needs the input
    channels to be a multiple of 4 (and at least 16 filters, a multiple of 8); otherwise it copies
    every output pixel's window (im2col) first. A first layer reading 3 stacked frames of x/y flow
    has 6. Columns are contiguous in (H, W, C), so a Reshape makes (W, C) into (W/B, B*C): with
    B = 4 that is 24 stacked channels, and the frame stacking's Transpose moves 8 bytes at a time
    instead of 2. Output column ``k*m + p`` reads input columns ``B*m + s*p`` onwards, so phase
    ``p``'s filters are the kernel shifted by ``s*p`` columns within ``ceil((s*(k-1) + kw) / B)``
    blocks (zero weights elsewhere), and the conv's (W/k, k*O) output is the (W, O) one, again by a
    Reshape. ``k = 2`` where the width allows it, else ``k = 1`` (``B = s``); only for width
    strides > 1 and no width padding or dilation. Measured on the main job's first layer (INT8, 2
    threads, stacking and conv, 16 / 32 filters): batch 1 0.74 -> 0.53 (k = 1) -> 0.41 ms /
    0.90 -> 0.70 -> 0.57 ms, batch 8 6.2 -> 3.8 -> 2.7 ms / 7.6 -> 4.9 -> 4.0 ms."""
    s, w, wo = geo["strides"][1], geo["in_hw"][1], geo["out_hw"][1]
    if channels % 4 == 0 or s == 1 or (channels * s) % 4 or filters < 16 or filters % 8 or geo["dilations"][1] != 1 \
            or geo["pads"][1] or geo["pads"][3]:
        return 1, 1
    for k in (2, 1) if has_bias_constant else (1,):
        block = s * k
        blocks = -(-(s * (k - 1) + kw) // block)
        if w % block == 0 and wo % k == 0 and w // block - blocks + 1 == wo // k:
            return s, k
    return 1, 1


def _blocked_kernel(w2d: np.ndarray, kt: int, c: int, s: int, k: int) -> tuple[np.ndarray, int]:
    """(O, kt*C, kh, kw) -> (k*O, kt*B*C, kh, blocks), B = s*k: filter ``p*O + o`` is filter o of
    phase p, whose tap x reads column ``s*p + x`` of the blocks, i.e. input channel
    ``(dt*B + (s*p + x) % B)*C + c`` of block ``(s*p + x) // B``."""
    o, _, kh, kw = w2d.shape
    block = s * k
    blocks = -(-(s * (k - 1) + kw) // block)
    taps = w2d.reshape(o, kt, c, kh, kw)
    out = np.zeros((k, o, kt, block, c, kh, blocks), w2d.dtype)  # (phase, O, dt, column in block, C, kh, block)
    for phase in range(k):
        for x in range(kw):
            column = s * phase + x
            out[phase, :, :, column % block, :, :, column // block] = taps[..., x]
    return out.reshape(k * o, kt * block * c, kh, blocks), blocks


def _frame_indices(geo: dict[str, Any]) -> np.ndarray:
    kt, st = geo["kt"], geo["st"]
    return np.array([t * st + dt for t in range(geo["frames_out"]) for dt in range(kt)], np.int64)


def _frame_major_input(conv: Any, p: str, frame_major: dict[str, str], perm: list[int]) -> tuple[list[Any], str]:
    """The conv's input in the frame-major layout: an earlier rewrite's output, or a new Transpose."""
    from onnx import helper

    source = frame_major.get(conv.input[0])
    if source is not None:
        return [], source
    source = f"{p}/frame_major"
    return [helper.make_node("Transpose", [conv.input[0]], [source], perm=perm, name=source)], source


def _conv_and_relu(nodes: list[Any], conv: Any, relu: Any | None, geo: dict[str, Any], source: str, weight: str,
                   kh: int, kw: int, bias: str | None = None) -> str:
    """Append the Conv2D (and Relu) reading ``source``, with ``conv``'s bias unless ``bias`` names
    another; return the last output's name."""
    from onnx import helper

    p = _prefix(conv)
    biases = [bias] if bias else conv.input[2:3]
    nodes.append(helper.make_node("Conv", [source, weight, *biases], [f"{p}/conv2d"], name=f"{p}/conv2d",
                                  kernel_shape=[kh, kw], strides=geo["strides"], dilations=geo["dilations"],
                                  pads=geo["pads"]))
    if relu is None:
        return f"{p}/conv2d"
    nodes.append(helper.make_node("Relu", [f"{p}/conv2d"], [f"{p}/relu"], name=f"{p}/relu"))
    return f"{p}/relu"


def _back_to_ncthw(conv: Any, relu: Any | None, p: str, frames: str, perm: list[int],
                   frame_major: dict[str, str]) -> list[Any]:
    """The Transpose giving the original output name its (N, C, T, H, W) layout back (folded away
    or dropped when only rewritten convolutions read it)."""
    from onnx import helper

    out_name = (relu or conv).output[0]
    frame_major[out_name] = frames
    return [helper.make_node("Transpose", [frames], [out_name], perm=perm, name=f"{p}/to_ncthw")]


def _fold_transposes(graph: Any) -> None:
    """Make each Transpose fed by another Transpose read that one's input, with the composed perm;
    drop those whose composed perm leaves the tensor as it is."""
    made_by = producers(graph.node)
    for node in graph.node:
        first = made_by.get(node.input[0]) if _has_perm(node) else None
        if first is not None and _has_perm(first):
            outer, inner = list(attrs(first)["perm"]), list(attrs(node)["perm"])
            node.input[0] = first.input[0]
            del node.attribute[:]
            node.attribute.append(_perm([outer[i] for i in inner]))
    outputs = {o.name for o in graph.output}
    for node in [n for n in graph.node if _has_perm(n) and n.output[0] not in outputs]:
        perm = list(attrs(node)["perm"])
        if perm == sorted(perm):
            for reader in graph.node:
                reader.input[:] = [node.input[0] if name == node.output[0] else name for name in reader.input]
            graph.node.remove(node)


def _has_perm(node: Any) -> bool:
    """A Transpose with its ``perm`` written out (without it, it reverses the axes)."""
    return node.op_type == "Transpose" and "perm" in attrs(node)


def _perm(values: list[int]) -> Any:
    from onnx import helper

    return helper.make_attribute("perm", values)
