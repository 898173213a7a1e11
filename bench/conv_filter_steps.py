"""How ONNX Runtime's CPU convolution time grows with the number of filters: in steps, not a line.

Times one FP32 Conv2D + Relu (``--channels`` input channels, 3x3, stride 2, ``--batch`` images
of 28x28: the size of cnn3d's conv2 at width 1.0 with frames as batch) for each filter count in
``--filters``, at 1 and 2 threads, and prints milliseconds per run and the ratio to the first
count. What it shows on AVX2: the blocked (NCHWc) kernel works on sets of filters, so a layer
pruned to just above a step (e.g. 40 filters) costs nearly as much as the next step (48), which
is why pruning gains less speed on narrow models and why ``granularity: 16`` is nearly free.

    python bench/conv_filter_steps.py [--channels 64] [--batch 168] [--filters 16 24 32 40 48 56 64]
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np


def conv_model(channels: int, filters: int, batch: int, size: int) -> bytes:
    """A serialized ONNX model: Conv (3x3, stride 2, bias) then Relu."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    weights = [numpy_helper.from_array(rng.normal(size=(filters, channels, 3, 3)).astype("float32"), "w"),
               numpy_helper.from_array(rng.normal(size=filters).astype("float32"), "b")]
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c"], kernel_shape=[3, 3], strides=[2, 2]),
             helper.make_node("Relu", ["c"], ["y"])]
    graph = helper.make_graph(nodes, "conv", [helper.make_tensor_value_info("x", TensorProto.FLOAT,
                                                                             [batch, channels, size, size])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], weights)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=8).SerializeToString()


def milliseconds(model: bytes, x: np.ndarray, threads: int, rounds: int = 7, calls: int = 5) -> float:
    """Best-of-``rounds`` mean time of one run, in ms."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
    for _ in range(3):
        session.run(None, {"x": x})
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(calls):
            session.run(None, {"x": x})
        best = min(best, (time.perf_counter() - start) / calls)
    return 1000 * best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--channels", type=int, default=64)
    parser.add_argument("--batch", type=int, default=168)
    parser.add_argument("--size", type=int, default=28)
    parser.add_argument("--filters", type=int, nargs="+", default=[16, 24, 32, 40, 48, 56, 64])
    args = parser.parse_args()
    x = np.random.default_rng(1).normal(size=(args.batch, args.channels, args.size, args.size)).astype("float32")
    print(f"Conv2D {args.channels} channels, 3x3 stride 2, batch {args.batch} of {args.size}x{args.size}; "
          f"load average at start {os.getloadavg()[0]:.2f}")
    print(f"{'filters':>8} " + " ".join(f"{f'{t} thread ms':>13} {'ratio':>6}" for t in (1, 2)))
    first: dict[int, float] = {}
    for filters in args.filters:
        model = conv_model(args.channels, filters, args.batch, args.size)
        cells = []
        for threads in (1, 2):
            ms = milliseconds(model, x, threads)
            first.setdefault(threads, ms)
            cells.append(f"{ms:>13.2f} {ms / first[threads]:>6.2f}")
        print(f"{filters:>8} " + " ".join(cells), flush=True)


if __name__ == "__main__":
    main()
