"""Prometheus metrics of one gateway app, in a registry of its own (tests build many apps).

Under `sluice serve --workers N` the supervisor sets PROMETHEUS_MULTIPROC_DIR for every worker:
prometheus_client then keeps each worker's values in files there, and a scrape, whichever worker
takes it, renders all of them (counters and histograms summed, gauges one series per `pid`).
"""

from __future__ import annotations

import os

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.multiprocess import MultiProcessCollector

__all__ = ["GatewayMetrics"]

LATENCY_BUCKETS = (
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1,
    2.5,
    5,
    10,
    30,
    60,
)
MAX_MODEL_LABELS = 200


class GatewayMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "sluice_requests_total",
            "Requests by route, status and model.",
            ["route", "status", "model"],
            registry=r,
        )
        self.latency = Histogram(
            "sluice_request_duration_seconds",
            "Time from request to last byte, by route.",
            ["route"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.ttft = Histogram(
            "sluice_time_to_first_token_seconds",
            "Streams: time to the first content chunk.",
            ["route"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.upstream_errors = Counter(
            "sluice_upstream_errors_total",
            "Upstream failures by upstream and kind.",
            ["upstream", "kind"],
            registry=r,
        )
        self.usage_rejected = Counter(
            "sluice_upstream_usage_rejected_total",
            "Upstream usage counts not billed as reported (negative, not_integer, absurd, "
            "inconsistent), by upstream and reason.",
            ["upstream", "reason"],
            registry=r,
        )
        self.log_buffer_depth = Gauge(
            "sluice_log_buffer_rows",
            "Request-log rows waiting to be written.",
            registry=r,
        )
        self.log_rows_dropped = Counter(
            "sluice_log_rows_dropped_total",
            "Request-log rows dropped: the buffer was full, or at shutdown neither the database "
            "nor the dead-letter file took them.",
            registry=r,
        )
        self.log_rows_written = Counter(
            "sluice_log_rows_written_total",
            "Request-log rows written to the database.",
            registry=r,
        )
        self.log_dead_letters = Counter(
            "sluice_request_log_dead_letters",
            "Request-log rows the database refused, kept in the dead-letter table or file.",
            registry=r,
        )
        self._models: set[str] = set()

    def model_label(self, model: str | None) -> str:
        """Bound the label's cardinality: a client can send any model name."""
        if not model:
            return "none"
        if model in self._models:
            return model
        if len(self._models) >= MAX_MODEL_LABELS or len(model) > 100:
            return "other"
        self._models.add(model)
        return model

    def render(self) -> bytes:
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            every_worker = CollectorRegistry()
            MultiProcessCollector(every_worker)  # type: ignore[no-untyped-call]
            return generate_latest(every_worker)
        return generate_latest(self.registry)
