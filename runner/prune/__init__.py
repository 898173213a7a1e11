"""Filter pruning that physically shrinks functional Keras 3 models.

- ``prune_model(model, percentile=..., ...)``: remove the conv filters whose kernel norm falls
  below a percentile; returns (smaller model, report).
- ``prune_model_to(model, keep)``: keep exactly the named filters (conv layer -> indices).
- ``plot_filters_kept(report, path)``: bar chart of kept/original filters per layer (PNG).
- ``count_flops(model)``: FLOPs of one sample (2 x multiply-accumulates).

Modules: ``select`` (which filters: pure NumPy), ``graph`` + ``layers`` (where each filter's
channel goes), ``surgery`` (rebuild the model and copy the kept weights), ``flops``,
``report``. The returned model is not compiled: compile it before fine-tuning.
"""

from __future__ import annotations

from .api import prune_model, prune_model_to
from .flops import count_flops
from .report import plot_filters_kept

__all__ = ["count_flops", "plot_filters_kept", "prune_model", "prune_model_to"]
