"""Prometheus metrics, one registry per app: requests, latencies, analyses, frames.

Request counters and latency histograms are recorded by `service.middleware`; analyses by
status and frames processed are read from the database at scrape time, so every replica
reports the same numbers.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy.exc import SQLAlchemyError

from capstone.errors import CapstoneError
from capstone.store import queries
from capstone.store.tables import VIDEO_STATUSES

log = logging.getLogger("capstone.service")


class _AnalysisCollector(Collector):
    """Analyses by status and frames processed, read from the database per scrape."""

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily(
            "capstone_database_up", "Whether the database answered this scrape (1) or not (0)"
        )
        try:
            counts = queries.analysis_status_counts()
            frames = queries.frames_processed_total()
        except (CapstoneError, SQLAlchemyError, OSError) as exc:
            # Down: the request metrics are still served; the reason goes to the log only.
            log.warning("metrics: database not readable: %s", exc)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        gauge = GaugeMetricFamily(
            "capstone_analyses", "Analyses stored, by status", labels=["status"]
        )
        for status in sorted(set(VIDEO_STATUSES) | set(counts)):
            gauge.add_metric([status], counts.get(status, 0))
        yield gauge
        yield CounterMetricFamily(
            "capstone_frames_processed", "Frames processed by all stored analyses", value=frames
        )


class Metrics:
    """The metrics of one app instance."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "capstone_http_requests",
            "HTTP requests by method, route template and status",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "capstone_http_request_duration_seconds",
            "HTTP request latency by method and route template",
            ["method", "route"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
            registry=self.registry,
        )
        self.upload_rejections = Counter(
            "capstone_upload_rejections",
            "Uploads rejected, by reason",
            ["reason"],
            registry=self.registry,
        )
        self.registry.register(_AnalysisCollector())

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        self.requests.labels(method, route, str(status)).inc()
        self.latency.labels(method, route).observe(seconds)
