"""Prometheus metrics of one server (its own registry, so several apps can live in one process)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)


@dataclass
class Metrics:
    registry: Any
    requests: Any
    latency: Any
    batch_size: Any
    predicted: Any
    drift_psi: Any
    drift_alert: Any
    drift_inputs: Any

    @classmethod
    def create(cls, threshold: float) -> Metrics:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        r = CollectorRegistry()
        m = cls(
            registry=r,
            requests=Counter("gaitrun_requests", "HTTP requests by endpoint and status", ["endpoint", "status"], registry=r),
            latency=Histogram("gaitrun_request_latency_seconds", "request latency by endpoint", ["endpoint"],
                              buckets=LATENCY_BUCKETS, registry=r),
            batch_size=Histogram("gaitrun_batch_size", "rows per model run (dynamic batching)",
                                 buckets=BATCH_BUCKETS, registry=r),
            predicted=Counter("gaitrun_predicted_class", "predicted class of each input row", ["label"], registry=r),
            drift_psi=Gauge("gaitrun_drift_psi", "largest per-channel PSI of recent inputs against training "
                            "(-1 until enough inputs or without training statistics)", registry=r),
            drift_alert=Gauge("gaitrun_drift_alert", f"1 when gaitrun_drift_psi exceeds the threshold {threshold:g}",
                              registry=r),
            drift_inputs=Gauge("gaitrun_drift_window_inputs", "inputs in the drift window", registry=r),
        )
        m.drift_psi.set(-1)
        return m

    def exposition(self) -> bytes:
        from prometheus_client import generate_latest

        return generate_latest(self.registry)
