"""Prometheus metrics, correct across gunicorn workers.

With PROMETHEUS_MULTIPROC_DIR set (gunicorn_conf.py sets it before the app is
imported) every worker writes its samples to files there and a scrape sums them;
without it (tests, `flask run`) the metrics live in a registry of this app's own.
"""

import os
from collections.abc import Callable, Iterator

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily, InfoMetricFamily, Metric
from prometheus_client.registry import Collector

from model import Scorer

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class ModelCollector(Collector):
    """Which model this process serves, read at scrape time (no per-worker files needed)."""

    def __init__(self, current_scorer: Callable[[], Scorer | None]):
        self._current_scorer = current_scorer

    def collect(self) -> Iterator[Metric]:
        scorer = self._current_scorer()
        ready = GaugeMetricFamily("sentiment_model_ready", "1 when a verified model is loaded")
        ready.add_metric([], 1.0 if scorer else 0.0)
        yield ready
        if scorer:
            info = InfoMetricFamily("sentiment_model", "The model bundle being served")
            info.add_metric([], {"version": scorer.version, "sha256": scorer.metadata.sha256})
            yield info


class Metrics:
    def __init__(self, current_scorer: Callable[[], Scorer | None]):
        self._multiprocess = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))
        own = None if self._multiprocess else CollectorRegistry()
        self.requests = Counter(
            "sentiment_http_requests",
            "HTTP requests by route, method and status",
            ["route", "method", "status"],
            registry=own,
        )
        self.latency = Histogram(
            "sentiment_http_request_duration_seconds",
            "Time spent handling a request",
            ["route", "method"],
            buckets=LATENCY_BUCKETS,
            registry=own,
        )
        self.predictions = Counter(
            "sentiment_predictions", "Reviews scored, by predicted label", ["label"], registry=own
        )
        self._model_collector = ModelCollector(current_scorer)
        if own is not None:
            own.register(self._model_collector)
        self._own_registry = own

    def observe_request(self, route: str, method: str, status: int, seconds: float) -> None:
        self.requests.labels(route, method, str(status)).inc()
        self.latency.labels(route, method).observe(seconds)

    def render(self) -> tuple[bytes, str]:
        registry = self._own_registry
        if registry is None:
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)
            registry.register(self._model_collector)
        return generate_latest(registry), CONTENT_TYPE_LATEST
