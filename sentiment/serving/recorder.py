"""What happens to a prediction after it is answered: an audit event and a row of the
outcome store, written by a thread of the worker that answered, off the request's path.

A request hands over what it scored (`record`) and returns; the thread hashes the inputs,
counts their unknown tokens, writes one audit line per request and the store's rows, a
batch at a time. Nothing here can fail a prediction: when the queue is full or the
volume refuses a write, the events are dropped and counted
(sentiment_monitoring_dropped_total{reason}), and the service goes on answering.
"""

import atexit
import contextlib
import json
import logging
import os
import queue
import re
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass

from sentiment.model import Prediction, Scorer
from sentiment.model.drift import Vocabulary
from sentiment.serving.audit import AuditFile
from sentiment.serving.outcomes import OutcomeStore, input_sha256, storable
from sentiment.serving.settings import Settings

logger = logging.getLogger(__name__)
BATCH = 2048
BATCH_REVIEWS = 20_000
GATHER_SECONDS = 0.05


@dataclass(slots=True)
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
    # The challenger, when it is to score this request in the shadows too.
    shadow: Scorer | None = None


class Recorder:
    def __init__(self, settings: Settings, count_dropped, count_recorded, count_shadow):
        monitoring = settings.monitoring
        self.enabled = monitoring.enabled
        self._settings = monitoring
        self._count_dropped = count_dropped
        self._count_recorded = count_recorded
        self._count_shadow = count_shadow
        self._pid: int | None = None
        self._thread: threading.Thread | None = None
        self._queue: queue.Queue[Scored] = queue.Queue()
        # The review characters waiting: the queue is bounded by them too, not only by
        # requests (a request may be a batch of a thousand long reviews).
        self._queued_chars = 0
        self._chars_lock = threading.Lock()
        self._models: dict[str, ModelFacts] = {}
        self._lock = threading.Lock()
        self._second, self._second_text = -1, ""
        # The event's constant fields, as JSON once.
        self._where = (f'"environment":{json.dumps(settings.environment)},'
                       f'"image":{json.dumps(settings.build.image)}')  # fmt: skip

    def record(self, scored: Scored) -> None:
        """Hands a request over to this process's writer thread (started on first use:
        a thread does not survive gunicorn's fork)."""
        if not self.enabled:
            return
        if self._pid != os.getpid() or not self._thread.is_alive():
            self._start()
        chars = sum(map(len, scored.texts))
        with self._chars_lock:
            if self._queued_chars + chars > self._settings.queue_max_chars:
                full = True
            else:
                full, self._queued_chars = False, self._queued_chars + chars
        if full:
            self._count_dropped("queue_full", len(scored.texts))
            return
        try:
            self._queue.put_nowait(scored)
        except queue.Full:
            self._release(chars)
            self._count_dropped("queue_full", len(scored.texts))

    def _release(self, chars: int) -> None:
        with self._chars_lock:
            self._queued_chars -= chars

    def flush(self, timeout: float = 5.0) -> bool:
        """Waits until what was handed over is written (or dropped); False on timeout."""
        deadline = time.monotonic() + timeout
        while self._pid == os.getpid() and self._queue.unfinished_tasks:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.005)
        return True

    def _start(self) -> None:
        """The writer thread of this process: a new one (and a new queue) after a fork; a
        new one, on the same queue, if the last one died."""
        with self._lock:
            forked = self._pid != os.getpid()
            if not forked and self._thread is not None and self._thread.is_alive():
                return
            if forked:
                self._queue = queue.Queue(maxsize=self._settings.queue_size)
                self._queued_chars = 0
                self._pid = os.getpid()
                atexit.register(self.flush, 2.0)
            self._thread = threading.Thread(target=self._run, name="monitoring-recorder",
                                            daemon=True)  # fmt: skip
            self._thread.start()

    def _run(self) -> None:
        directory = self._settings.dir
        audit = AuditFile(directory, self._settings.audit_max_bytes, self._settings.audit_backups)
        store = OutcomeStore(directory, self._settings.recent_predictions,
                             self._settings.feedback_kept)  # fmt: skip
        while True:
            batch = [self._queue.get()]
            # Let a batch gather: one write and one commit for many requests, not for each.
            time.sleep(GATHER_SECONDS)
            reviews = len(batch[0].texts)
            while len(batch) < BATCH and reviews < BATCH_REVIEWS:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
                reviews += len(batch[-1].texts)
            try:
                self._write(batch, audit, store)
            except Exception as error:  # a full or broken volume: drop, count, go on
                self._count_dropped("write_failed", reviews)
                logger.warning("monitoring events dropped: %s", error)
                with contextlib.suppress(Exception):
                    audit.close()
                with contextlib.suppress(Exception):
                    store.close()
            finally:
                self._release(sum(sum(map(len, scored.texts)) for scored in batch))
                for _ in batch:
                    self._queue.task_done()

    def _write(self, batch: list[Scored], audit: AuditFile, store: OutcomeStore) -> None:
        """One audit line and one store row per request. The line is formatted here, not
        by json.dumps of a dict per review (which cost more than scoring the review): its
        constant parts are JSON made once per model, its strings json.dumps'd or of a
        pattern that needs no escaping (hex digests, labels), its floats repr()'d as
        json writes them."""
        lines, rows, reviews = [], [], 0
        keep_text = self._settings.record_review_text
        for scored in batch:
            model = self._model(scored.scorer)
            count = model.vocabulary.count
            entries = []
            for text, prediction in zip(scored.texts, scored.predictions, strict=True):
                entry = ITEM % (input_sha256(text), len(text), prediction.positive.__repr__(),
                                prediction.label, *count(text))  # fmt: skip
                if keep_text:
                    entry = f'{entry[:-1]},"review":{json.dumps(storable(text))}}}'
                entries.append(entry)
            # The store keeps the same array: the predictions are encoded once.
            items = f"[{','.join(entries)}]"
            shadow = self._shadow(scored) if scored.shadow is not None else ""
            lines.append(
                f'{{"time":"{self._time(scored.at)}","request_id":{_string(scored.request_id)},'
                f'{self._where},"key_id":{_string(scored.key_id)},{model.head},'
                f'"answered_by":{_string(scored.answered_by)},'
                f'"latency_ms":{round(scored.seconds * 1000, 3)!r},"predictions":{items}{shadow}}}'
            )
            rows.append((scored.key_id or "", scored.request_id, scored.at, scored.scorer.version,
                         scored.answered_by, len(entries), items))  # fmt: skip
            reviews += len(entries)
        # The store first: once a request is in the audit log, feedback finds it.
        store.add_requests(rows)
        audit.append(("\n".join(lines) + "\n").encode("ascii"))
        self._count_recorded(reviews)

    def _shadow(self, scored: Scored) -> str:
        """The challenger's scores of a shadowed request, and where it agrees (the labels),
        as the event's "shadow" field; counted in sentiment_shadow_*_total."""
        challenger = scored.shadow
        theirs = challenger.predict(scored.texts)
        agree = [a.label == b.label for a, b in zip(scored.predictions, theirs, strict=True)]
        self._count_shadow(len(agree), sum(agree))
        document = {"version": challenger.version, "sha256": challenger.metadata.sha256,
                    "scores": [p.positive for p in theirs], "agree": agree}  # fmt: skip
        return f',"shadow":{json.dumps(document, separators=(",", ":"))}'

    def _time(self, at: float) -> str:
        """ISO 8601 with milliseconds, UTC; the seconds part made once per second."""
        second = int(at)
        if second != self._second:
            self._second = second
            self._second_text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        return f"{self._second_text}.{int((at - second) * 1000):03d}+00:00"

    def _model(self, scorer: Scorer) -> "ModelFacts":
        facts = self._models.get(scorer.version)
        if facts is None:
            head = json.dumps({"version": scorer.version, "sha256": scorer.metadata.sha256},
                              separators=(",", ":"))  # fmt: skip
            facts = ModelFacts(scorer.vocabulary(), f'"model":{head}')
            self._models[scorer.version] = facts
        return facts


@dataclass(frozen=True)
class ModelFacts:
    """What the writer needs of a model, made once per model version."""

    vocabulary: Vocabulary
    head: str  # "model":{...} as JSON


# Request ids, key ids and roles are of this shape (request_log.VALID_REQUEST_ID, key ids,
# "champion"): quoted as they are, with nothing to escape. Anything else goes to json.
PLAIN = re.compile(r"[A-Za-z0-9._:-]*").fullmatch


def _string(value: str | None) -> str:
    if value is None:
        return "null"
    return f'"{value}"' if PLAIN(value) else json.dumps(value)


# One review in an audit event; every field is a number, a hex digest or a label name.
ITEM = ('{"input_sha256":"%s","input_length":%d,"score":%s,"label":"%s","tokens":%d,'
        '"unknown_tokens":%d}')  # fmt: skip
