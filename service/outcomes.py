"""The outcome store: the recent predictions, and the feedback that says whether they were
right. One SQLite file on the monitoring volume, shared by the workers (WAL: readers never
wait for the writer); each worker's recorder thread adds predictions in batches, the
feedback endpoint adds feedback, and scrapes read the windows the gauges are computed over.

Both tables are bounded: beyond `keep` rows (requests, feedbacks), the oldest are deleted
as new ones come. A client's request ids are its own: a prediction is found by (key id,
request id, item), so feedback names only predictions made with the same key.
"""

import hashlib
import json
import sqlite3
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from model.scoring import LABELS

STORE_FILE = "outcomes.sqlite"
BUSY_TIMEOUT_SECONDS = 5.0
SCHEMA = """
CREATE TABLE IF NOT EXISTS predictions (
    seq INTEGER PRIMARY KEY,
    key_id TEXT NOT NULL,
    request_id TEXT NOT NULL,
    at REAL NOT NULL,
    model_version TEXT NOT NULL,
    answered_by TEXT NOT NULL,
    reviews INTEGER NOT NULL,
    items TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS predictions_by_request ON predictions (key_id, request_id);
CREATE TABLE IF NOT EXISTS feedback (
    seq INTEGER PRIMARY KEY,
    key_id TEXT NOT NULL,
    request_id TEXT NOT NULL,
    item INTEGER NOT NULL,
    at REAL NOT NULL,
    label INTEGER NOT NULL,
    predicted INTEGER NOT NULL,
    model_version TEXT NOT NULL,
    input_sha256 TEXT NOT NULL,
    review TEXT,
    UNIQUE (key_id, request_id, item)
);
"""
# A label name -> the class it names (model.scoring.LABELS, which every bundle has).
CLASSES = {name: int(number) for number, name in LABELS.items()}


def input_sha256(text: str) -> str:
    """The sha256 of a review's UTF-8 (a lone surrogate, which JSON allows, kept as is)."""
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def storable(text: str) -> str:
    """The review as SQLite can hold it: a lone surrogate becomes "?"."""
    return text.encode("utf-8", "replace").decode("utf-8")


@dataclass(frozen=True)
class RequestRow:
    """One answered request: `items` is its audit event's "predictions" array (JSON)."""

    key_id: str  # "" where no key is asked for
    request_id: str
    at: float
    model_version: str
    answered_by: str
    reviews: int
    items: str


@dataclass(frozen=True)
class Recorded:
    """A prediction feedback can be given on."""

    predicted: int
    model_version: str
    input_sha256: str
    review: str | None


@dataclass(frozen=True)
class Feedback:
    label: int
    predicted: int
    model_version: str


class DuplicateFeedback(Exception):
    def __init__(self, existing: Feedback):
        super().__init__("feedback was already given")
        self.existing = existing


class OutcomeStore:
    def __init__(self, directory: Path, keep: int):
        self.path = directory / STORE_FILE
        self._keep = keep
        self._connection: sqlite3.Connection | None = None

    def connect(self) -> sqlite3.Connection:
        """This thread's connection (made on first use; SQLite's are per thread)."""
        if self._connection is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            connection = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_SECONDS,
                                         isolation_level=None, check_same_thread=True)  # fmt: skip
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA synchronous=NORMAL")
            connection.executescript(SCHEMA)
            self._connection = connection
        return self._connection

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def add_requests(self, rows: Iterable[tuple]) -> None:
        """Rows of RequestRow's fields, in its order."""
        connection = self.connect()
        with connection:
            connection.execute("BEGIN IMMEDIATE")
            connection.executemany(
                "INSERT INTO predictions (key_id, request_id, at, model_version, answered_by, "
                "reviews, items) VALUES (?, ?, ?, ?, ?, ?, ?)",
                rows,
            )
            self._prune(connection, "predictions")

    def recorded(self, key_id: str, request_id: str, item: int) -> Recorded | None:
        """Item `item` of the latest request of that id made with that key."""
        query = ("SELECT model_version, reviews, items FROM predictions "
                 "WHERE key_id = ? AND request_id = ? ORDER BY seq DESC LIMIT 1")  # fmt: skip
        row = self.connect().execute(query, (key_id, request_id)).fetchone()
        if row is None or not 0 <= item < row[1]:
            return None
        entry = json.loads(row[2])[item]
        return Recorded(CLASSES[entry["label"]], row[0], entry["input_sha256"],
                        entry.get("review"))  # fmt: skip

    def add_feedback(
        self, key_id: str, request_id: str, item: int, label: int, prediction: Recorded,
        review: str | None,
    ) -> None:  # fmt: skip
        """Records feedback once; DuplicateFeedback (with what was recorded) after that."""
        connection = self.connect()
        try:
            with connection:
                connection.execute("BEGIN IMMEDIATE")
                connection.execute(
                    "INSERT INTO feedback (key_id, request_id, item, at, label, predicted, "
                    "model_version, input_sha256, review) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (key_id, request_id, item, time.time(), label, prediction.predicted,
                     prediction.model_version, prediction.input_sha256,
                     review if review is not None else prediction.review),
                )  # fmt: skip
                self._prune(connection, "feedback")
        except sqlite3.IntegrityError:
            row = connection.execute(
                "SELECT label, predicted, model_version FROM feedback "
                "WHERE key_id = ? AND request_id = ? AND item = ?",
                (key_id, request_id, item),
            ).fetchone()
            raise DuplicateFeedback(Feedback(*row)) from None

    def recent_feedback(self, limit: int) -> list[tuple[int, int]]:
        """(label, predicted) of the latest feedback, newest first."""
        return (
            self.connect()
            .execute("SELECT label, predicted FROM feedback ORDER BY seq DESC LIMIT ?", (limit,))
            .fetchall()
        )

    def last_feedback_at(self) -> float | None:
        return self.connect().execute("SELECT MAX(at) FROM feedback").fetchone()[0]

    def recent_predictions(self, limit: int) -> list[tuple[float, int, int, int]]:
        """(score, length, tokens, unknown tokens) of the champion's latest `limit` reviews."""
        found: list[tuple[float, int, int, int]] = []
        query = ("SELECT items FROM predictions WHERE answered_by = 'champion' "
                 "ORDER BY seq DESC LIMIT ?")  # fmt: skip
        for (document,) in self.connect().execute(query, (limit,)):
            found += [(entry["score"], entry["input_length"], entry["tokens"],
                       entry["unknown_tokens"]) for entry in json.loads(document)]  # fmt: skip
            if len(found) >= limit:
                return found[:limit]
        return found

    def labelled_reviews(self) -> list[tuple[str, int]]:
        """(review, true label) of every feedback whose review is known, oldest first:
        training data for the next model."""
        return (
            self.connect()
            .execute("SELECT review, label FROM feedback WHERE review IS NOT NULL ORDER BY seq")
            .fetchall()
        )

    def _prune(self, connection: sqlite3.Connection, table: str) -> None:
        connection.execute(
            f"DELETE FROM {table} WHERE seq <= (SELECT MAX(seq) FROM {table}) - ?",  # noqa: S608
            (self._keep,),
        )
