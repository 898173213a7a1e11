"""Remove conv filters whose kernel norm falls below a percentile, then rebuild a smaller model.

``granularity`` stays 1 by default: rounding kept counts up to multiples of 8 suits GPU tensor
cores (TensorRT FP16/INT8), but on a CPU it buys nothing since the ONNX exporter pads channels
to whole blocks of 8 itself (``pad_channels``). Measured with ``bench/pruning.py`` (ONNX
Runtime, 2 threads, quiet machine) at p = 40 per layer, width 0.5, batch 1 / 8: cnn2d_bmvc
1.65x / 1.56x faster than unpruned with granularity 1, 1.63x / 1.60x with 8; cnn3d 1.46x / 1.52x
vs 1.56x / 1.47x.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class Params(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    percentile: float = Field(40.0, ge=0, lt=100, description="filters below this percentile of norms go")
    scope: Literal["global", "per_layer"] = Field("global", description="one threshold, or one per layer")
    criterion: Literal["l1", "l2"] = Field("l1", description="norm of each filter's kernel (bias excluded)")
    normalise: Literal["none", "max", "l2"] = Field("none", description="per-layer normalisation of norms")
    min_filters: int = Field(1, ge=1, description="every layer keeps at least this many filters")
    granularity: int = Field(1, ge=1, le=256, description="kept counts rounded to a multiple of this")
    exclude: list[str] = Field(default_factory=list, description="layer names never pruned")


def prune(model, *, params: Params):
    """Prune ``model`` (a Keras model); returns (smaller model, report dict)."""
    from gaitrun.prune import prune_model

    return prune_model(model, params)
