"""Input drift: per-channel training statistics (saved at export time) and the PSI of recent
inputs against them.

The export stage calls :func:`training_stats` on windows drawn from the training split and
writes the result to ``export/input_stats.json``: per input channel (the last axis of a model
input) its mean, standard deviation, the interior edges of ``BINS`` quantile bins and the
share of training values in each bin. The server keeps the bin counts of the last ``window``
inputs (:class:`DriftMonitor`) and scores them with the population stability index

    PSI = sum over bins of (a_i - e_i) * ln(a_i / e_i)

(a = share among recent inputs, e = training share, both floored at ``FLOOR``), per channel;
the score is the largest channel's PSI. Rule of thumb: < 0.1 little change, 0.1-0.25
moderate, > 0.25 significant, hence the default alert threshold 0.25.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

import numpy as np

BINS = 10
FLOOR = 1e-4  # an empty bin would make ln(a/e) infinite
STATS_FILE = "input_stats.json"
STATS_WINDOWS = 256  # training windows the statistics are computed from
MAX_VALUES = 2_000_000  # values per channel used for the quantiles (a seeded subsample beyond)
PER_INPUT = 2048  # values per channel counted from each served input (evenly strided beyond)


def _channels(x: np.ndarray) -> np.ndarray:
    """(N, ..., C) -> (C, values) float64."""
    x = np.asarray(x, np.float64)
    return x.reshape(-1, x.shape[-1]).T


def training_stats(x: np.ndarray, *, seed: int = 0) -> dict[str, Any]:
    """Per-channel mean, std, quantile bin edges and bin shares of training inputs ``x``."""
    if len(x) == 0:
        raise ValueError("training_stats needs at least one training window")
    rng = np.random.default_rng(seed)
    channels = []
    for values in _channels(x):
        sample = values if len(values) <= MAX_VALUES else rng.choice(values, MAX_VALUES, replace=False)
        edges = np.unique(np.quantile(sample, np.linspace(0, 1, BINS + 1)[1:-1]))
        counts = np.bincount(np.searchsorted(edges, values, side="right"), minlength=len(edges) + 1)
        channels.append({"mean": float(values.mean()), "std": float(values.std()),
                         "edges": edges.tolist(), "shares": (counts / counts.sum()).tolist()})
    return {"windows": int(len(x)), "input_shape": list(x.shape[1:]), "bins": BINS, "channels": channels}


def psi(actual: np.ndarray, expected: np.ndarray) -> float:
    """Population stability index of bin shares ``actual`` against ``expected``."""
    a = np.maximum(np.asarray(actual, np.float64), FLOOR)
    e = np.maximum(np.asarray(expected, np.float64), FLOOR)
    return float(np.sum((a - e) * np.log(a / e)))


@dataclass
class DriftMonitor:
    """Bin counts of the last ``window`` inputs, per channel, and their PSI against training.

    ``update`` takes a batch of model inputs (N, ..., C) and is called from the inference
    thread; ``score`` is the largest per-channel PSI (``None`` until ``min_inputs`` inputs).
    """

    stats: dict[str, Any]
    window: int = 256
    threshold: float = 0.25
    min_inputs: int = 16
    _recent: deque = field(default_factory=deque)
    _total: np.ndarray | None = None

    def __post_init__(self) -> None:
        self._edges = [np.asarray(c["edges"], np.float32) for c in self.stats["channels"]]
        self._expected = [np.asarray(c["shares"]) for c in self.stats["channels"]]
        self._total = np.zeros((len(self._edges), max(len(e) + 1 for e in self._edges)), np.int64)

    def _counts(self, sample: np.ndarray) -> np.ndarray:
        """Bin counts of one input, from at most ``PER_INPUT`` evenly strided positions per channel
        (a 25x60x60x2 clip would otherwise cost as much as the model)."""
        rows = sample.reshape(-1, sample.shape[-1])
        rows = rows[:: max(1, len(rows) // PER_INPUT)]
        out = np.zeros_like(self._total)
        for c, (values, edges) in enumerate(zip(rows.T, self._edges, strict=True)):
            out[c, : len(edges) + 1] = np.bincount(np.searchsorted(edges, values, side="right"),
                                                   minlength=len(edges) + 1)
        return out

    def update(self, batch: np.ndarray) -> None:
        for sample in batch:
            counts = self._counts(sample)
            self._recent.append(counts)
            self._total += counts
            if len(self._recent) > self.window:
                self._total -= self._recent.popleft()

    @property
    def inputs(self) -> int:
        return len(self._recent)

    def channel_psi(self) -> list[float]:
        result = []
        for c, expected in enumerate(self._expected):
            counts = self._total[c, : len(expected)]
            result.append(psi(counts / max(counts.sum(), 1), expected))
        return result

    def score(self) -> float | None:
        return max(self.channel_psi()) if self.inputs >= self.min_inputs else None

    def alert(self) -> bool:
        s = self.score()
        return s is not None and s > self.threshold
