"""Pad only where it pays, measured: ``pad_channels: measured`` (the ``onnx`` exporter's default).

Zero-padding a conv's input channels to whole blocks (``gaitrun.export.pad_channels``) puts it on
ONNX Runtime's blocked kernel, but it also gives the producing conv extra (zero) filters: after
pruning, padding 29 kept filters back to 32 can cost more than the blocked kernel saves, and on
a CPU whose blocks are 16 wide (AVX-512) the 8-channel padding may not reach the fast path at
all. So each candidate padding is tried on its own: the whole graph is timed in ONNX Runtime at
batch 1 and 8, with and without it, and a padding is kept only when it makes the graph at least
``GAIN`` faster on average over the two batch sizes. What was measured is returned for
``export.json``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np

from .pad_channels import candidates, pad_conv_inputs

BATCHES = (1, 8)
GAIN = 0.97  # keep a padding only if the graph gets at least 3 % faster with it
ROUNDS = 7


def measured_padding(proto: Any, *, conv3d_as_2d: bool, finish: Callable[[Any], Any]) -> dict[str, Any]:
    """Pad, in place, the candidate convs of ``proto`` whose padding makes the finished graph
    (``finish(copy)``: the later rewrites) faster; returns ``{conv: {"padded", "time_ratio"}}``."""
    names = candidates(proto, conv3d_as_2d=conv3d_as_2d)
    if not names:
        return {}
    base = graph_times(finish(_copy(proto)))
    report: dict[str, Any] = {}
    for name in names:
        trial = _copy(proto)
        pad_conv_inputs(trial, conv3d_as_2d=conv3d_as_2d, only={name})
        times = graph_times(finish(trial))
        ratio = float(np.mean([times[b] / base[b] for b in BATCHES]))
        report[name] = {"padded": ratio < GAIN, "time_ratio": round(ratio, 3)}
    keep = {name for name, r in report.items() if r["padded"]}
    if keep:
        pad_conv_inputs(proto, conv3d_as_2d=conv3d_as_2d, only=keep)
    return report


def graph_times(proto: Any) -> dict[int, float]:
    """Best-of-``ROUNDS`` seconds per call of ``proto`` in ONNX Runtime (CPU) at each batch size."""
    import onnxruntime as ort

    session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    inp = session.get_inputs()[0]
    dims = [d if isinstance(d, int) else 1 for d in inp.shape[1:]]
    rng = np.random.default_rng(0)
    times = {}
    for batch in BATCHES:
        x = rng.normal(size=(batch, *dims)).astype(np.float32)
        session.run(None, {inp.name: x})
        best = float("inf")
        for _ in range(ROUNDS):
            start = time.perf_counter()
            session.run(None, {inp.name: x})
            best = min(best, time.perf_counter() - start)
        times[batch] = best
    return times


def _copy(proto: Any) -> Any:
    import onnx

    clone = onnx.ModelProto()
    clone.CopyFrom(proto)
    return clone
