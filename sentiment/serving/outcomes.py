"""The outcome store: the recent predictions, and the feedback that says whether they were
right. One SQLite file on the monitoring volume, shared by the workers (WAL: readers never
wait for the writer); each worker's recorder thread adds predictions in batches, the
feedback endpoint adds feedback, and scrapes read the windows the gauges are computed over.

Both tables are bounded: each API key id keeps its latest `keep_reviews_per_key` reviews
(one key's traffic never pushes out another's predictions; the key ids are those of the
key-hash file, so the table stays bounded too), and the store its latest `keep_feedback`
feedbacks; the oldest are deleted as new ones come. A client's request ids are its own: a
prediction is found by (key id, request id, item), so feedback names only predictions
made with the same key.
"""

import hashlib
import json
import sqlite3
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from sentiment.model.scoring import LABELS

STORE_FILE = "outcomes.sqlite"
BUSY_TIMEOUT_SECONDS = 5.0
JOURNAL_LIMIT_BYTES = 32 * 1024 * 1024
# The schema's version, kept in the file's user_version: a file of an older one is brought
# up to date when it is opened.
SCHEMA_VERSION = 1
SCHEMA = (
    """CREATE TABLE IF NOT EXISTS predictions (
        seq INTEGER PRIMARY KEY,
        key_id TEXT NOT NULL,
        request_id TEXT NOT NULL,
        at REAL NOT NULL,
        model_version TEXT NOT NULL,
        answered_by TEXT NOT NULL,
        reviews INTEGER NOT NULL,
        items TEXT NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS predictions_by_request ON predictions (key_id, request_id)",
    # A key's oldest requests, found without a scan when its window is pruned.
    "CREATE INDEX IF NOT EXISTS predictions_by_key ON predictions (key_id, seq)",
    # How many reviews each key holds in the predictions table: a key's window is bounded
    # by reviews, not rows (one row is a whole request, up to a batch of a thousand).
    """CREATE TABLE IF NOT EXISTS key_reviews (
        key_id TEXT PRIMARY KEY,
        reviews INTEGER NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS feedback (
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
    )""",
    # Each key's latest feedback, for the live accuracy.
    "CREATE INDEX IF NOT EXISTS feedback_by_key ON feedback (key_id, seq)",
)
# Brings a version-0 file up to date: its one global total of reviews becomes a count per
# key. Also run when a version-0 service wrote to the file after it was brought up to date
# (it makes `totals` again), so the counts are those of the rows.
UPGRADE = (
    "DROP TABLE IF EXISTS totals",
    "DELETE FROM key_reviews",
    "INSERT INTO key_reviews SELECT key_id, SUM(reviews) FROM predictions GROUP BY key_id",
)
# A label name -> the class it names (model.scoring.LABELS, which every bundle has).
CLASSES = {name: int(number) for number, name in LABELS.items()}


def input_sha256(text: str) -> str:
    """The sha256 of a review's UTF-8 (a lone surrogate, which JSON allows, kept as is)."""
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def storable(text: str) -> str:
    """The review as SQLite can hold it: a lone surrogate becomes "?"."""
    return text.encode("utf-8", "replace").decode("utf-8")


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
    def __init__(self, directory: Path, keep_reviews_per_key: int, keep_feedback: int = 0):
        self.path = directory / STORE_FILE
        self._keep_reviews = keep_reviews_per_key
        self._keep_feedback = keep_feedback
        self._connection: sqlite3.Connection | None = None

    def connect(self) -> sqlite3.Connection:
        """This thread's connection (made on first use; SQLite's are per thread)."""
        if self._connection is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            connection = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_SECONDS,
                                         isolation_level=None, check_same_thread=True)  # fmt: skip
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA synchronous=NORMAL")
            # The write-ahead log is cut back to this after a checkpoint, whatever a big
            # batch once made it grow to.
            connection.execute(f"PRAGMA journal_size_limit={JOURNAL_LIMIT_BYTES}")
            if self._outdated(connection):
                self._upgrade(connection)
            self._connection = connection
        return self._connection

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def add_requests(self, rows: Sequence[tuple]) -> None:
        """One row per answered request: (key id, "" where no key is asked for; request id;
        when, Unix time; model version; which model answered; its number of reviews; its
        audit event's "predictions" array, as JSON)."""
        connection = self.connect()
        added: dict[str, int] = {}
        for row in rows:
            added[row[0]] = added.get(row[0], 0) + row[5]
        with connection:
            connection.execute("BEGIN IMMEDIATE")
            connection.executemany(
                "INSERT INTO predictions (key_id, request_id, at, model_version, answered_by, "
                "reviews, items) VALUES (?, ?, ?, ?, ?, ?, ?)",
                rows,
            )
            for key_id, reviews in added.items():
                self._prune_reviews(connection, key_id, reviews)

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
                connection.execute(
                    "DELETE FROM feedback WHERE seq <= (SELECT MAX(seq) FROM feedback) - ?",
                    (self._keep_feedback,),
                )
        except sqlite3.IntegrityError:
            row = connection.execute(
                "SELECT label, predicted, model_version FROM feedback "
                "WHERE key_id = ? AND request_id = ? AND item = ?",
                (key_id, request_id, item),
            ).fetchone()
            raise DuplicateFeedback(Feedback(*row)) from None

    def accuracy_by_key(self, window: int) -> list[tuple[str, int, int]]:
        """(key id, feedbacks, right predictions) over each key's latest `window` feedbacks,
        for every key with feedback kept."""
        connection = self.connect()
        query = ("SELECT COUNT(*), COALESCE(SUM(label = predicted), 0) FROM (SELECT label, "
                 "predicted FROM feedback WHERE key_id = ? ORDER BY seq DESC LIMIT ?)")  # fmt: skip
        found = []
        for key_id in self._feedback_keys(connection):
            count, correct = connection.execute(query, (key_id, window)).fetchone()
            found.append((key_id, count, correct))
        return found

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

    def labelled_reviews(self) -> list[tuple[str, int, str, str, int, str]]:
        """(review, true label, key id, request id, item, input sha256) of every feedback
        whose review is known, oldest first: training data for the next model."""
        query = ("SELECT review, label, key_id, request_id, item, input_sha256 FROM feedback "
                 "WHERE review IS NOT NULL ORDER BY seq")  # fmt: skip
        return self.connect().execute(query).fetchall()

    @staticmethod
    def _feedback_keys(connection: sqlite3.Connection) -> list[str]:
        """The key ids with feedback, one index lookup each (not a scan of every feedback)."""
        query = """
            WITH RECURSIVE keys(key_id) AS (
                SELECT MIN(key_id) FROM feedback
                UNION ALL
                SELECT (SELECT MIN(key_id) FROM feedback WHERE key_id > keys.key_id) FROM keys
                WHERE keys.key_id IS NOT NULL
            )
            SELECT key_id FROM keys WHERE key_id IS NOT NULL"""
        return [key_id for (key_id,) in connection.execute(query)]

    def _prune_reviews(self, connection: sqlite3.Connection, key_id: str, added: int) -> None:
        """Deletes the key's oldest requests until it keeps at most `keep_reviews_per_key`
        reviews (its rows found by index, the other keys' never read)."""
        (total,) = connection.execute(
            "INSERT INTO key_reviews VALUES (?, ?) ON CONFLICT (key_id) "
            "DO UPDATE SET reviews = reviews + excluded.reviews RETURNING reviews",
            (key_id, added),
        ).fetchone()
        excess = total - self._keep_reviews
        if excess <= 0:
            return
        removed, last = 0, None
        query = "SELECT seq, reviews FROM predictions WHERE key_id = ? ORDER BY seq"
        for seq, reviews in connection.execute(query, (key_id,)):
            removed, last = removed + reviews, seq
            if removed >= excess:
                break
        connection.execute("DELETE FROM predictions WHERE key_id = ? AND seq <= ?", (key_id, last))
        connection.execute(
            "UPDATE key_reviews SET reviews = reviews - ? WHERE key_id = ?", (removed, key_id)
        )

    @staticmethod
    def _outdated(connection: sqlite3.Connection) -> bool:
        (version,) = connection.execute("PRAGMA user_version").fetchone()
        stale = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'totals'"
        return version < SCHEMA_VERSION or connection.execute(stale).fetchone() is not None

    def _upgrade(self, connection: sqlite3.Connection) -> None:
        """Makes the tables and brings an older file up to date, once (the workers open
        the file at once: the first to take the write lock does it, the others find it
        done)."""
        with connection:
            connection.execute("BEGIN IMMEDIATE")
            if not self._outdated(connection):
                return
            for statement in (*SCHEMA, *UPGRADE):
                connection.execute(statement)
            connection.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
