"""What happens to a prediction after it is answered: an audit event and a row of the
outcome store, written by a thread of the worker that answered, off the request's path.

A request hands over what it scored (`record`) and returns; the thread hashes the inputs,
counts their unknown tokens, writes one audit line per request and the store's rows, a
batch at a time. Nothing here can fail a prediction: when the queue is full or the
volume refuses a write, the events are dropped and counted
(sentiment_monitoring_dropped_total{reason}), and the service goes on answering.
"""

import atexit
import json
import logging
import os
import queue
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from model import Prediction, Scorer
from service.audit import AuditFile
from service.outcomes import OutcomeStore, PredictionRow, input_sha256, storable
from service.settings import Settings

logger = logging.getLogger(__name__)
BATCH = 512
IDLE_SECONDS = 0.2


@dataclass(frozen=True)
class Scored:
    """One answered request, as the request thread hands it over."""

    at: float
    request_id: str
    key_id: str | None
    texts: Sequence[str]
    predictions: Sequence[Prediction]
    seconds: float
    scorer: Scorer
    answered_by: str = "champion"


class Recorder:
    def __init__(self, settings: Settings, count_dropped, count_recorded):
        monitoring = settings.monitoring
        self.enabled = monitoring.enabled
        self._settings = monitoring
        self._environment = settings.environment
        self._image = settings.build.image
        self._count_dropped = count_dropped
        self._count_recorded = count_recorded
        self._pid: int | None = None
        self._queue: queue.Queue[Scored] = queue.Queue()
        self._vocabularies: dict[str, object] = {}
        self._lock = threading.Lock()

    def record(self, scored: Scored) -> None:
        """Hands a request over to this process's writer thread (started on first use:
        a thread does not survive gunicorn's fork)."""
        if not self.enabled:
            return
        if self._pid != os.getpid():
            self._start()
        try:
            self._queue.put_nowait(scored)
        except queue.Full:
            self._count_dropped("queue_full", len(scored.texts))

    def flush(self, timeout: float = 5.0) -> bool:
        """Waits until what was handed over is written (or dropped); False on timeout."""
        deadline = time.monotonic() + timeout
        while self._pid == os.getpid() and self._queue.unfinished_tasks:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.005)
        return True

    def _start(self) -> None:
        with self._lock:
            if self._pid == os.getpid():
                return
            self._queue = queue.Queue(maxsize=self._settings.queue_size)
            self._pid = os.getpid()
            thread = threading.Thread(target=self._run, name="monitoring-recorder", daemon=True)
            thread.start()
            atexit.register(self.flush, 2.0)

    def _run(self) -> None:
        directory = self._settings.dir
        audit = AuditFile(directory, self._settings.audit_max_bytes, self._settings.audit_backups)
        store = OutcomeStore(directory, self._settings.recent_predictions)
        while True:
            batch = [self._queue.get()]
            while len(batch) < BATCH:
                try:
                    batch.append(self._queue.get(timeout=IDLE_SECONDS if len(batch) < 2 else 0))
                except queue.Empty:
                    break
            try:
                self._write(batch, audit, store)
            except Exception as error:  # a full or broken volume: drop, count, go on
                reviews = sum(len(scored.texts) for scored in batch)
                self._count_dropped("write_failed", reviews)
                logger.warning("monitoring events dropped: %s", error)
                audit.close()
                store.close()
            finally:
                for _ in batch:
                    self._queue.task_done()

    def _write(self, batch: list[Scored], audit: AuditFile, store: OutcomeStore) -> None:
        lines, rows = [], []
        keep_text = self._settings.record_review_text
        for scored in batch:
            vocabulary = self._vocabulary(scored.scorer)
            predictions = []
            for item, (text, prediction) in enumerate(
                zip(scored.texts, scored.predictions, strict=True)
            ):
                digest = input_sha256(text)
                tokens, unknown = vocabulary.count(text)
                review = storable(text) if keep_text else None
                entry = {"input_sha256": digest, "input_length": len(text),
                         "score": prediction.positive, "label": prediction.label,
                         "tokens": tokens, "unknown_tokens": unknown}  # fmt: skip
                if review is not None:
                    entry["review"] = review
                predictions.append(entry)
                rows.append(PredictionRow(
                    scored.key_id or "", scored.request_id, item, scored.at,
                    scored.scorer.version, scored.answered_by,
                    scored.scorer.class_of(prediction.label), prediction.positive, len(text),
                    tokens, unknown, digest, review,
                ))  # fmt: skip
            event = {
                "time": datetime.fromtimestamp(scored.at, UTC).isoformat(timespec="milliseconds"),
                "request_id": scored.request_id,
                "environment": self._environment,
                "image": self._image,
                "key_id": scored.key_id,
                "model": {
                    "version": scored.scorer.version,
                    "sha256": scored.scorer.metadata.sha256,
                },
                "answered_by": scored.answered_by,
                "latency_ms": round(scored.seconds * 1000, 3),
                "predictions": predictions,
            }
            lines.append(json.dumps(event, separators=(",", ":")))  # ASCII: any text is safe
        audit.append(("\n".join(lines) + "\n").encode("ascii"))
        store.add_predictions(rows)
        self._count_recorded(len(rows))

    def _vocabulary(self, scorer: Scorer):
        vocabulary = self._vocabularies.get(scorer.version)
        if vocabulary is None:
            vocabulary = self._vocabularies[scorer.version] = scorer.vocabulary()
        return vocabulary
