"""The gauges that watch the model in production, read from the outcome store at scrape
time, so every worker reports the same windows (its own rows and the others'):

- live accuracy over the latest feedback, each API key id weighing the same (one key's
  labels move it by at most 1/(keys with feedback) of its range), and when feedback last
  came;
- drift over the champion's latest predictions against the bundle's reference: the share
  of tokens the model never saw, and the PSI of the scores and of the review lengths.
"""

import logging
import sqlite3
from collections.abc import Callable, Iterator

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from sentiment.model import Scorer
from sentiment.serving.outcomes import OutcomeStore
from sentiment.serving.settings.schema import MonitoringSettings

logger = logging.getLogger(__name__)


def gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, documentation)
    family.add_metric([], value)
    return family


class MonitoringCollector(Collector):
    def __init__(self, settings: MonitoringSettings, current_scorer: Callable[[], Scorer | None]):
        self._settings = settings
        self._current_scorer = current_scorer

    def collect(self) -> Iterator[Metric]:
        if not self._settings.enabled:
            return
        store = OutcomeStore(self._settings.dir, self._settings.recent_predictions)
        try:
            yield from self._feedback(store)
            yield from self._drift(store)
        except (sqlite3.Error, OSError) as error:  # an unreadable store: no gauges, no 500
            logger.warning("monitoring gauges unavailable: %s", error)
        finally:
            store.close()

    def _feedback(self, store: OutcomeStore) -> Iterator[Metric]:
        keys = store.accuracy_by_key(self._settings.accuracy_window)
        yield gauge(
            "sentiment_live_accuracy_feedback",
            "Feedback in the live accuracy windows (each key's latest, summed)",
            sum(count for _, count, _ in keys),
        )
        yield gauge(
            "sentiment_live_accuracy_keys",
            "API key ids the live accuracy is the mean over (those with feedback)",
            len(keys),
        )
        if keys:
            yield gauge(
                "sentiment_live_accuracy",
                "Mean over the API key ids with feedback of the share of each one's latest "
                "feedback (up to accuracy_window of them) whose prediction was right",
                sum(correct / count for _, count, correct in keys) / len(keys),
            )
        last = store.last_feedback_at()
        if last is not None:
            yield gauge("sentiment_feedback_last_timestamp_seconds",
                        "When the latest feedback was recorded (Unix time)", last)  # fmt: skip

    def _drift(self, store: OutcomeStore) -> Iterator[Metric]:
        scorer = self._current_scorer()
        reference = scorer.metadata.reference if scorer else None
        rows = store.recent_predictions(self._settings.drift_window)
        yield gauge("sentiment_drift_window_reviews", "Reviews in the drift window", len(rows))
        if reference is None or not rows:
            return
        tokens = sum(row[2] for row in rows)
        unknown = sum(row[3] for row in rows)
        yield gauge("sentiment_drift_oov_share",
                    "Share of the window's tokens the model never saw", unknown / tokens
                    if tokens else 0.0)  # fmt: skip
        yield gauge(
            "sentiment_drift_reference_oov_share",
            "The same share on the held-out reviews at training",
            reference.oov_share,
        )
        yield gauge("sentiment_drift_score_psi", "PSI of the window's scores against training's",
                    reference.scores.psi(row[0] for row in rows) or 0.0)  # fmt: skip
        yield gauge("sentiment_drift_length_psi",
                    "PSI of the window's review lengths against training's",
                    reference.lengths.psi(float(row[1]) for row in rows) or 0.0)  # fmt: skip
