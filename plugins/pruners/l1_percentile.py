"""Remove conv filters whose kernel norm falls below a percentile, then rebuild a smaller model.

``granularity`` stays 1 by default: rounding kept counts up to multiples of 8 suits GPU tensor
cores (TensorRT FP16/INT8); on a CPU the ONNX exporter pads channels to whole blocks of 8
itself (``pad_channels``), and ONNX Runtime's blocked kernel costs steps of filters
(``bench/conv_filter_steps.py``, AVX2, one thread: 40 filters cost as much as 48, and 40% more
than 32), so ``granularity: 16`` keeps filters nearly for free. Measured with
``bench/pruning.py`` (ONNX Runtime, 2 threads, the graph the ``onnx`` exporter writes) at p = 40
per layer, batch 1 / 8, published widths: cnn3d 2.0x / 2.0x faster than unpruned, cnn2d_bmvc
1.64x / 1.66x (1.59x at batch 1 without the exporter's ``fold_linear``); at width 0.5 cnn3d gains
only 1.46-1.57x (its conv1 goes from 32 to 19 filters, which cost like 24).
"""

from __future__ import annotations

from typing import Any, Literal

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


def prune(model: Any, *, params: Params, protected: frozenset[str]) -> tuple[Any, dict[str, Any]]:
    """Prune ``model`` (a Keras model), never the ``protected`` layers; returns (smaller model,
    report dict with its one-line ``summary``)."""
    from gaitrun.prune import prune_model

    return prune_model(model, **params.model_dump(), protected=protected)
