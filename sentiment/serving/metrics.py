"""Prometheus metrics, correct across gunicorn workers.

With PROMETHEUS_MULTIPROC_DIR set (gunicorn_conf.py sets it before the app is
imported) every worker writes its samples to files there and a scrape sums them;
without it (tests, `flask run`) the metrics live in a registry of this app's own.
Recycled workers would leave a file each behind, so a dead worker's samples are added
into one archive file and its own files removed (`archive_dead_worker`).

Label values never come from the client as sent: the route is the URL rule (or
"unmatched"), the method one of METHODS (or "other"), the status the one we answer,
the key id that of a key in the key-hash file that matched.
"""

import collections
import fcntl
import os
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily, InfoMetricFamily, Metric
from prometheus_client.mmap_dict import MmapedDict
from prometheus_client.registry import Collector

from sentiment.model import Scorer
from sentiment.model.scoring import Prediction

if TYPE_CHECKING:
    from sentiment.serving.soft_launch import SoftLaunch

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
DROP_REASONS = ("queue_full", "write_failed")
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
# The sample files that are sums (a dead worker's share still counts); gauges of this
# service are not file-backed.
SUMMED = ("counter", "histogram")
ARCHIVE = "archive"
LOCK_FILE = ".lock"
# The families that say which clients there are, how many and what each sends: for
# operators.
PER_KEY = frozenset({"sentiment_api_key_requests", "sentiment_rate_limited",
                     "sentiment_live_accuracy_keys"})  # fmt: skip
# The gunicorn master archives: it must not stall behind a flood of scrapes.
ARCHIVE_WAIT_SECONDS = 2.0


def method_label(method: str) -> str:
    return method if method in METHODS else "other"


@contextmanager
def _locked(directory: Path, mode: int, wait_seconds: float | None = None) -> Iterator[None]:
    """Scrapes share the lock; archiving takes it alone, so a scrape never sees a dead
    worker's samples twice (in its file and in the archive) or a file vanish mid-read.
    With `wait_seconds`, TimeoutError when the lock is not had by then."""
    with open(directory / LOCK_FILE, "a") as handle:
        if wait_seconds is None:
            fcntl.flock(handle, mode)
        else:
            deadline = time.monotonic() + wait_seconds
            while True:
                try:
                    fcntl.flock(handle, mode | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        raise TimeoutError(f"{directory / LOCK_FILE} stayed locked") from None
                    time.sleep(0.01)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def archive_dead_worker(directory: Path, pid: int) -> None:
    """Adds a dead worker's counter and histogram samples into the archive files and
    removes its own: the totals stay, the file count stays bounded. Scrapes that keep the
    lock busy (TimeoutError) only delay this: the files are summed as they are until then."""
    with _locked(directory, fcntl.LOCK_EX, wait_seconds=ARCHIVE_WAIT_SECONDS):
        for kind in SUMMED:
            dead = directory / f"{kind}_{pid}.db"
            if not dead.exists():
                continue
            archive = MmapedDict(str(directory / f"{kind}_{ARCHIVE}.db"))
            try:
                for key, value, timestamp, _ in MmapedDict.read_all_values_from_file(str(dead)):
                    archived, _ = archive.read_value(key)
                    archive.write_value(key, archived + value, timestamp)
            finally:
                archive.close()
            dead.unlink()


class ModelCollector(Collector):
    """Which model this process serves, read at scrape time (no per-worker files needed)."""

    def __init__(
        self, current_scorer: Callable[[], Scorer | None], soft_launch: "SoftLaunch | None" = None
    ):
        self._current_scorer = current_scorer
        self._soft_launch = soft_launch

    def collect(self) -> Iterator[Metric]:
        scorer = self._current_scorer()
        ready = GaugeMetricFamily("sentiment_model_ready", "1 when a verified model is loaded")
        ready.add_metric([], 1.0 if scorer else 0.0)
        yield ready
        if scorer:
            info = InfoMetricFamily("sentiment_model", "The model bundle being served")
            info.add_metric([], {"version": scorer.version, "sha256": scorer.metadata.sha256})
            yield info
            accuracy = scorer.metadata.metrics.get("accuracy")
            if isinstance(accuracy, int | float):
                held_out = GaugeMetricFamily(
                    "sentiment_model_heldout_accuracy",
                    "The served model's accuracy on held-out reviews at training",
                )
                held_out.add_metric([], float(accuracy))
                yield held_out
        launch = self._soft_launch
        if launch is not None:
            loaded = GaugeMetricFamily("sentiment_challenger_loaded",
                                       "1 when a challenger runs beside the champion")  # fmt: skip
            loaded.add_metric([], 1.0 if launch.challenger else 0.0)
            yield loaded
            if launch.challenger is not None:
                info = InfoMetricFamily("sentiment_challenger", "The soft-launched challenger")
                info.add_metric([], {"version": launch.challenger.version, "mode": launch.mode})
                yield info


class Metrics:
    def __init__(
        self,
        current_scorer: Callable[[], Scorer | None],
        scrape_time: Iterable[Collector] = (),
        soft_launch: "SoftLaunch | None" = None,
    ):
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
        self._label_children: dict[str, Any] = {}
        # Only ids of keys that matched: the key-hash file bounds them.
        self.key_requests = Counter(
            "sentiment_api_key_requests", "Requests let in, by API key id", ["key_id"],
            registry=own,
        )  # fmt: skip
        self._key_children: dict[str, Any] = {}
        self.rate_limited = Counter(
            "sentiment_rate_limited", "Requests refused with 429, by API key id ('-': no key)",
            ["key_id"], registry=own,
        )  # fmt: skip
        # What the monitoring recorder wrote, and dropped (never a prediction).
        self.recorded = Counter(
            "sentiment_monitoring_recorded", "Predictions written to the audit log and store",
            registry=own,
        )  # fmt: skip
        self.dropped = Counter(
            "sentiment_monitoring_dropped",
            "Predictions not audited: queue_full, write_failed", ["reason"], registry=own,
        )  # fmt: skip
        for reason in DROP_REASONS:  # at zero from the start: increase() sees the first drop
            self.dropped.labels(reason)
        self.feedback = Counter(
            "sentiment_feedback", "Feedback recorded, by whether the prediction was right",
            ["outcome"], registry=own,
        )  # fmt: skip
        # (route, method, status) -> its counter and histogram: few keys, labels bounded.
        self._children: dict[tuple[str, str, int], tuple[Any, Any]] = {}
        self.shadow_reviews = Counter(
            "sentiment_shadow_reviews", "Reviews the challenger also scored in the shadows",
            registry=own,
        )  # fmt: skip
        self.shadow_agreements = Counter(
            "sentiment_shadow_agreements",
            "Shadowed reviews the challenger labelled as the champion did", registry=own,
        )  # fmt: skip
        self._scrape_time = [ModelCollector(current_scorer, soft_launch), *scrape_time]
        if own is not None:
            for collector in self._scrape_time:
                own.register(collector)
        self._own_registry = own

    def observe_request(self, route: str, method: str, status: int, seconds: float) -> None:
        """`route` is a URL rule or "unmatched"; `method` is bucketed here."""
        key = (route, method_label(method), status)
        children = self._children.get(key)
        if children is None:  # label look-ups cost more than the increments: once per key
            children = (self.requests.labels(key[0], key[1], str(status)),
                        self.latency.labels(key[0], key[1]))  # fmt: skip
            self._children[key] = children
        children[0].inc()
        children[1].observe(seconds)

    def count_predictions(self, predictions: Sequence[Prediction]) -> None:
        """One increment per label, not per review: a batch of a thousand is two."""
        if len(predictions) == 1:
            self._label_child(predictions[0].label).inc()
            return
        for label, count in collections.Counter(p.label for p in predictions).items():
            self._label_child(label).inc(count)

    def _label_child(self, label: str) -> Any:
        child = self._label_children.get(label)
        if child is None:
            child = self._label_children[label] = self.predictions.labels(label)
        return child

    def count_key(self, key_id: str) -> None:
        child = self._key_children.get(key_id)
        if child is None:
            child = self._key_children[key_id] = self.key_requests.labels(key_id)
        child.inc()

    def count_rate_limited(self, key_id: str) -> None:
        self.rate_limited.labels(key_id).inc()

    def count_recorded(self, reviews: int) -> None:
        self.recorded.inc(reviews)

    def count_dropped(self, reason: str, reviews: int) -> None:
        self.dropped.labels(reason).inc(reviews)

    def count_shadow(self, reviews: int, agreements: int) -> None:
        self.shadow_reviews.inc(reviews)
        self.shadow_agreements.inc(agreements)

    def count_feedback(self, correct: bool) -> None:
        self.feedback.labels("correct" if correct else "wrong").inc()

    def render(self, per_key: bool = True) -> tuple[bytes, str]:
        """The exposition; without the PER_KEY families unless `per_key`."""
        registry = self._own_registry
        if registry is not None:
            return generate_latest(_view(registry, per_key)), CONTENT_TYPE_LATEST
        directory = Path(os.environ["PROMETHEUS_MULTIPROC_DIR"])
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, str(directory))
        for collector in self._scrape_time:
            registry.register(collector)
        with _locked(directory, fcntl.LOCK_SH):
            return generate_latest(_view(registry, per_key)), CONTENT_TYPE_LATEST


class _WithoutPerKey(Collector):
    def __init__(self, source: CollectorRegistry):
        self._source = source

    def collect(self) -> Iterator[Metric]:
        return (metric for metric in self._source.collect() if metric.name not in PER_KEY)


def _view(registry: CollectorRegistry, per_key: bool) -> CollectorRegistry:
    if per_key:
        return registry
    view = CollectorRegistry(auto_describe=False)
    view.register(_WithoutPerKey(registry))
    return view
