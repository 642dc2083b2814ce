"""The model watched after release: audit events (sentiment/serving/recorder.py,
sentiment/serving/audit.py), feedback (sentiment/serving/feedback.py,
sentiment/serving/outcomes.py), the drift and accuracy gauges (sentiment/serving/monitoring.py,
sentiment/model/drift.py), and what the release tooling makes of them (sentiment_release/observe/:
`sentiment audit find`, `sentiment drift`, `sentiment feedback export`)."""

import contextlib
import json
import multiprocessing
import os
import queue
import resource
import signal
import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace

import pytest
from click.testing import CliRunner

from sentiment.model import ModelFolder
from sentiment.model.drift import Distribution, Vocabulary, decile_edges, distribution_of, psi
from sentiment.serving.api_keys import new_key
from sentiment.serving.app import create_app
from sentiment.serving.audit import AuditFile, audit_files
from sentiment.serving.monitoring import MonitoringCollector
from sentiment.serving.outcomes import (
    SCHEMA_VERSION,
    STORE_FILE,
    OutcomeStore,
    Recorded,
    input_sha256,
)
from sentiment.serving.recorder import Recorder, Scored
from sentiment.serving.settings import ConfigError
from sentiment_release.cli.main import cli
from sentiment_release.observe.audit_log import AuditLog
from sentiment_release.observe.drift_report import drift_report
from sentiment_release.training.dataset import load_dataset
from tests.conftest import FIXTURE_DATA, make_settings, train_fixture_model

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def recorded(client) -> None:
    """Waits for the app's recorder to write what it was handed."""
    assert client.application.extensions["sentiment"].recorder.flush()


def audit_events(directory: Path) -> list[dict]:
    return list(AuditLog(directory).events())


def metric(client, name: str) -> float | None:
    for line in client.get("/metrics").get_data(as_text=True).splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return float(line.rsplit(" ", 1)[1])
    return None


class TestDriftMath:
    def test_the_same_distribution_has_no_drift_and_a_moved_one_has_a_lot(self):
        values = [i / 100 for i in range(100)]
        reference = distribution_of(values)
        assert reference.psi(values) == pytest.approx(0, abs=1e-9)
        assert reference.psi([v / 3 for v in values]) > 0.5  # squeezed into the low bins
        assert reference.psi([]) is None

    def test_deciles_cut_even_shares_and_collapse_repeats(self):
        assert decile_edges(list(range(100))) == [10, 20, 30, 40, 50, 60, 70, 80, 90]
        assert decile_edges([1.0] * 50 + [2.0] * 50) == [1.0, 2.0]

    def test_psi_never_divides_by_an_empty_bin(self):
        assert psi([10, 0], [0, 10]) > 1  # large and finite
        assert psi([0, 0], [1, 1]) is None

    def test_a_distribution_needs_one_count_per_bin_and_ascending_edges(self):
        with pytest.raises(ValueError, match="counts for"):
            Distribution(edges=[1.0], counts=[1])
        with pytest.raises(ValueError, match="ascending"):
            Distribution(edges=[2.0, 1.0], counts=[1, 1, 1])

    def test_unknown_tokens_are_counted_as_the_vectorizer_splits(self):
        vocabulary = Vocabulary(["good", "food"], r"(?u)\b\w\w+\b", lowercase=True)
        assert vocabulary.count("GOOD food, bad service!") == (4, 2)

    def test_the_bundle_records_its_reference(self, trained_registry):
        reference = ModelFolder(trained_registry).metadata().reference
        assert reference is not None
        assert sum(reference.scores.counts) == reference.reviews
        assert sum(reference.lengths.counts) == reference.reviews
        assert 0 <= reference.oov_share <= 1


class TestAuditFile:
    def test_rotation_keeps_the_files_within_their_bound(self, tmp_path):
        audit = AuditFile(tmp_path, max_bytes=1000, backups=2)
        for number in range(500):
            audit.append(f'{{"n":{number}}}\n'.encode())
        files = audit_files(tmp_path)
        assert [f.name for f in files] == ["audit.jsonl.2", "audit.jsonl.1", "audit.jsonl"]
        assert all(f.stat().st_size < 1000 + 20 for f in files)
        numbers = [json.loads(line)["n"] for f in files for line in f.read_text().splitlines()]
        assert numbers == sorted(numbers)
        assert numbers[-1] == 499  # the newest kept
        assert numbers[0] > 0  # the oldest rotated away

    def test_workers_writing_at_once_lose_and_tear_no_line(self, tmp_path):
        def write(worker: int) -> None:
            audit = AuditFile(tmp_path, max_bytes=20_000, backups=50)
            for number in range(500):
                audit.append(json.dumps({"worker": worker, "n": number, "pad": "x" * 40}).encode()
                             + b"\n")  # fmt: skip
            os._exit(0)

        context = multiprocessing.get_context("fork")
        workers = [context.Process(target=write, args=(w,)) for w in range(3)]
        for process in workers:
            process.start()
        for process in workers:
            process.join(30)
        lines = [line for f in audit_files(tmp_path) for line in f.read_text().splitlines()]
        seen = {(event["worker"], event["n"]) for event in map(json.loads, lines)}
        assert len(lines) == len(seen) == 1500
        assert len(audit_files(tmp_path)) > 3  # it did rotate, under all three

    def test_no_file_passes_the_bound_however_big_the_batches(self, tmp_path):
        """Batches of up to 20 lines of up to 450 bytes, three workers at once, against
        a bound of 4 KiB: rotated before a write would pass it, a batch split between
        lines. (Rotating after each write left files of 103 to 144 MB against 50 MiB.)"""
        max_bytes = 4096

        def write(worker: int) -> None:
            audit = AuditFile(tmp_path, max_bytes=max_bytes, backups=1000)
            for number in range(60):
                batch = [json.dumps({"worker": worker, "n": number, "line": line,
                                     "pad": "x" * ((worker * 7 + number * 13 + line * 31) % 400)})
                         for line in range(1 + (worker + number * 5) % 20)]  # fmt: skip
                audit.append(("\n".join(batch) + "\n").encode())
            os._exit(0)

        context = multiprocessing.get_context("fork")
        workers = [context.Process(target=write, args=(w,)) for w in range(3)]
        for process in workers:
            process.start()
        for process in workers:
            process.join(60)
        assert [process.exitcode for process in workers] == [0, 0, 0]
        files = audit_files(tmp_path)
        assert len(files) > 20
        assert max(f.stat().st_size for f in files) <= max_bytes
        written = {(w, n): 1 + (w + n * 5) % 20 for w in range(3) for n in range(60)}
        lines = [line for f in files for line in f.read_bytes().split(b"\n")[:-1]]
        assert all(f.read_bytes().endswith(b"\n") for f in files)  # no line split in two
        events = [json.loads(line) for line in lines]
        assert len(events) == sum(written.values())  # none lost, none twice
        assert {(e["worker"], e["n"], e["line"]) for e in events} == {
            (w, n, line) for (w, n), count in written.items() for line in range(count)
        }
        for worker in range(3):  # each worker's lines in the order it wrote them
            own = [(e["n"], e["line"]) for e in events if e["worker"] == worker]
            assert own == sorted(own)

    def test_a_line_longer_than_the_bound_goes_alone_into_a_fresh_file(self, tmp_path):
        audit = AuditFile(tmp_path, max_bytes=1000, backups=3)
        line = b'{"n": %d, "pad": "%s"}\n'
        audit.append(line % (1, b"x" * 300) + line % (2, b"x" * 300))
        audit.append(line % (3, b"x" * 300) + line % (4, b"x" * 2500) + line % (5, b"x"))
        audit.append(line % (6, b"x" * 300))
        files = audit_files(tmp_path)
        numbers = [[json.loads(x)["n"] for x in f.read_bytes().splitlines()] for f in files]
        assert numbers == [[1, 2, 3], [4], [5, 6]]  # three lines of 320 bytes fit in 1000
        assert [f.stat().st_size > 1000 for f in files] == [False, True, False]
        for number in range(7, 30):  # the rotated files stay as many as asked for
            audit.append(line % (number, b"x" * 300))
        assert [f.name for f in audit_files(tmp_path)] == [
            "audit.jsonl.3", "audit.jsonl.2", "audit.jsonl.1", "audit.jsonl"
        ]  # fmt: skip
        assert all(f.stat().st_size <= 1000 for f in audit_files(tmp_path))


@pytest.fixture
def service_overrides(tmp_path) -> dict:
    return {"monitoring.dir": tmp_path / "volume"}


class TestAudit:
    def test_every_prediction_is_an_event_with_what_was_asked_of_it(self, client, tmp_path):
        client.post("/predict/", json={"review": "great food"}, headers={"X-Request-ID": "r-1"})
        batch = client.post("/v1/predict", json={"reviews": ["bad", "very good"]}).get_json()
        recorded(client)
        single, many = audit_events(tmp_path / "volume")
        assert single["request_id"] == "r-1"
        assert many["request_id"] == batch["request_id"]
        assert single["environment"] == "test"
        assert single["answered_by"] == "champion"
        assert single["model"]["version"] == batch["model_version"]
        assert len(single["model"]["sha256"]) == 64
        assert single["latency_ms"] > 0
        [prediction] = single["predictions"]
        assert prediction["input_sha256"] == input_sha256("great food")
        assert prediction["input_length"] == len("great food")
        assert prediction["label"] in ("positive", "negative")
        assert "review" not in prediction  # test's config keeps no review text
        assert [p["score"] for p in many["predictions"]] == [
            p["positive"] for p in batch["predictions"]
        ]
        assert metric(client, "sentiment_monitoring_recorded_total") == 3

    def test_review_texts_are_kept_only_where_config_allows(self, trained_registry, tmp_path):
        app = create_app(make_settings("dev", **{"model.bundles_dir": trained_registry,
                                                 "monitoring.dir": tmp_path}))  # fmt: skip
        client = app.test_client()
        client.post("/predict/", json={"review": "kept in dev"})
        recorded(client)
        [event] = audit_events(tmp_path)
        assert event["predictions"][0]["review"] == "kept in dev"
        with pytest.raises(ConfigError, match="review texts are never recorded"):
            make_settings("prod", **{"monitoring.record_review_text": True})

    def test_an_unwritable_volume_drops_and_counts_and_never_fails_a_prediction(
        self, trained_registry, tmp_path
    ):
        (tmp_path / "a-file").write_text("not a directory")
        volume = tmp_path / "a-file" / "x"
        app = create_app(make_settings("test", **{"model.bundles_dir": trained_registry,
                                                  "monitoring.dir": volume}))  # fmt: skip
        client = app.test_client()
        for _ in range(3):
            assert client.post("/predict/", json={"review": "still answered"}).status_code == 200
        recorded(client)
        assert metric(client, 'sentiment_monitoring_dropped_total{reason="write_failed"}') == 3
        assert client.get("/readyz").status_code == 200

    def test_a_full_queue_drops_and_counts_by_requests_and_by_characters(
        self, trained_registry, tmp_path
    ):
        settings = make_settings("test", **{"monitoring.queue_size": 2,
                                            "monitoring.queue_max_chars": 1000,
                                            "monitoring.dir": tmp_path})  # fmt: skip
        dropped = []
        recorder = Recorder(settings, lambda reason, n: dropped.append((reason, n)), print, print)
        recorder._start = lambda: None  # no writer: everything waits in the queue
        recorder._pid, recorder._thread = os.getpid(), SimpleNamespace(is_alive=lambda: True)
        recorder._queue = queue.Queue(maxsize=2)
        scorer = create_app(make_settings("test", **{"model.bundles_dir": trained_registry})
                            ).extensions["sentiment"].scorer  # fmt: skip

        def scored(*texts: str) -> Scored:
            return Scored(0.0, "r", None, list(texts), scorer.predict(list(texts)), 0.001, scorer)

        recorder.record(scored("x" * 990))  # 990 of 1000 characters
        recorder.record(scored("y" * 20))  # over the character budget
        recorder.record(scored("z"))
        recorder.record(scored("w"))  # over the two requests
        assert dropped == [("queue_full", 1), ("queue_full", 1)]
        assert recorder._queue.qsize() == 2

    def test_a_writer_that_fails_even_to_clean_up_lives_on(self, client, tmp_path, monkeypatch):
        recorder = client.application.extensions["sentiment"].recorder
        original = Recorder._write
        failures = iter([OSError("EIO")])

        def write_once_failing(self, batch, audit, store):
            if (error := next(failures, None)) is not None:
                monkeypatch.setattr(AuditFile, "close", lambda self: 1 / 0)
                raise error
            monkeypatch.undo()
            return original(self, batch, audit, store)

        monkeypatch.setattr(Recorder, "_write", write_once_failing)
        client.post("/predict/", json={"review": "lost"}, headers={"X-Request-ID": "lost"})
        assert recorder.flush()
        client.post("/predict/", json={"review": "kept"}, headers={"X-Request-ID": "kept"})
        recorded(client)
        assert recorder._thread.is_alive()
        assert [e["request_id"] for e in audit_events(tmp_path / "volume")] == ["kept"]
        assert metric(client, 'sentiment_monitoring_dropped_total{reason="write_failed"}') == 1

    def test_a_full_volume_never_tears_a_line(self, tmp_path):
        """RLIMIT_FSIZE stands in for a full volume: the write stops part-way."""

        def fill() -> None:
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            unlimited = resource.RLIM_INFINITY
            resource.setrlimit(resource.RLIMIT_FSIZE, (150, unlimited))
            audit = AuditFile(tmp_path, max_bytes=10_000, backups=1)
            for number in range(5):
                with contextlib.suppress(OSError):
                    audit.append(json.dumps({"n": number, "pad": "x" * 40}).encode() + b"\n")
            resource.setrlimit(resource.RLIMIT_FSIZE, (unlimited, unlimited))  # space again
            audit.append(b'{"n": 99}\n')
            os._exit(0)

        process = multiprocessing.get_context("fork").Process(target=fill)
        process.start()
        process.join(30)
        lines = (tmp_path / "audit.jsonl").read_bytes().split(b"\n")
        whole = [json.loads(line) for line in lines if line.endswith(b"}")]
        assert [event["n"] for event in whole] == [0, 1, 99]  # the torn one is its own line

    def test_find_prints_the_events_of_one_request_id(self, client, tmp_path):
        client.post("/predict/", json={"review": "one"}, headers={"X-Request-ID": "wanted"})
        client.post("/predict/", json={"review": "two"}, headers={"X-Request-ID": "other"})
        recorded(client)
        runner = CliRunner()
        found = runner.invoke(cli, ["audit", "find", "test", "wanted", "--dir",
                                    str(tmp_path / "volume")])  # fmt: skip
        assert found.exit_code == 0, found.output
        [event] = [json.loads(line) for line in found.output.splitlines()]
        assert event["request_id"] == "wanted"
        missing = runner.invoke(cli, ["audit", "find", "test", "nothing", "--dir",
                                      str(tmp_path / "volume")])  # fmt: skip
        assert missing.exit_code == 1
        assert "no audit event of request id 'nothing'" in missing.output


# The store as version 0 of its schema made it (sentiment/serving/outcomes.py): one global total.
OLD_SCHEMA = """
CREATE TABLE predictions (seq INTEGER PRIMARY KEY, key_id TEXT NOT NULL,
    request_id TEXT NOT NULL, at REAL NOT NULL, model_version TEXT NOT NULL,
    answered_by TEXT NOT NULL, reviews INTEGER NOT NULL, items TEXT NOT NULL);
CREATE INDEX predictions_by_request ON predictions (key_id, request_id);
CREATE TABLE totals (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE feedback (seq INTEGER PRIMARY KEY, key_id TEXT NOT NULL,
    request_id TEXT NOT NULL, item INTEGER NOT NULL, at REAL NOT NULL, label INTEGER NOT NULL,
    predicted INTEGER NOT NULL, model_version TEXT NOT NULL, input_sha256 TEXT NOT NULL,
    review TEXT, UNIQUE (key_id, request_id, item));
"""


ENTRY = {"input_sha256": "0" * 64, "input_length": 4, "score": 0.9, "label": "positive",
         "tokens": 1, "unknown_tokens": 0}  # fmt: skip
INSERT = ("INSERT INTO predictions (key_id, request_id, at, model_version, answered_by, "
          "reviews, items) VALUES (?, ?, ?, ?, ?, ?, ?)")  # fmt: skip


def request_row(key_id: str, request_id: str, reviews: int) -> tuple:
    """A row as the recorder hands it to the store: a request of `reviews` positive ones."""
    return (key_id, request_id, 0.0, "v1", "champion", reviews, json.dumps([ENTRY] * reviews))


def key_reviews(store: OutcomeStore) -> dict[str, int]:
    return dict(store.connect().execute("SELECT key_id, reviews FROM key_reviews"))


class TestOutcomeStore:
    def test_the_store_keeps_reviews_not_requests(self, tmp_path):
        store = OutcomeStore(tmp_path, keep_reviews_per_key=100, keep_feedback=10)
        for number in range(10):
            store.add_requests([("", f"r{number}", 0.0, "v", "champion", 30, "[]")])
        (rows,) = store.connect().execute("SELECT COUNT(*) FROM predictions").fetchone()
        assert (rows, key_reviews(store)) == (3, {"": 90})  # the oldest seven batches of 30 went
        kept = [r for (r,) in store.connect().execute("SELECT request_id FROM predictions")]
        assert kept == ["r7", "r8", "r9"]

    def test_one_key_s_batches_never_push_out_another_key_s_predictions(self, tmp_path):
        store = OutcomeStore(tmp_path, keep_reviews_per_key=100, keep_feedback=10)
        store.add_requests([request_row("quiet", "q", 1)])
        for number in range(50):  # 1,500 reviews, most in batches mixing both kinds of rows
            rows = [request_row("busy", f"b{number}-{i}", 10) for i in range(3)]
            if number % 2 == 0:
                rows.append(request_row("other", f"o{number}", 1))
            store.add_requests(rows)
        assert store.recorded("quiet", "q", 0) is not None
        assert store.recorded("busy", "b49-2", 9) is not None
        assert store.recorded("busy", "b40-0", 0) is None  # its own oldest went
        assert key_reviews(store) == {"quiet": 1, "busy": 100, "other": 25}
        counted = "SELECT key_id, SUM(reviews) FROM predictions GROUP BY key_id"
        assert dict(store.connect().execute(counted)) == key_reviews(store)

    def test_a_store_of_the_old_schema_is_brought_up_to_date_once(self, tmp_path):
        connection = sqlite3.connect(tmp_path / STORE_FILE)
        connection.executescript(OLD_SCHEMA)
        rows = [request_row("a", f"a{n}", 40) for n in range(3)] + [request_row("b", "b0", 5)]
        connection.executemany(INSERT, rows)
        connection.execute("INSERT INTO totals VALUES ('reviews', 125)")
        connection.commit()
        connection.close()

        store = OutcomeStore(tmp_path, keep_reviews_per_key=100, keep_feedback=10)
        assert key_reviews(store) == {"a": 120, "b": 5}
        tables = {name for (name,) in store.connect().execute("SELECT name FROM sqlite_master")}
        assert "totals" not in tables
        assert {"predictions_by_key", "feedback_by_key"} <= tables
        assert store.recorded("b", "b0", 4) is not None
        store.add_requests([request_row("a", "a3", 10)])  # 130 of a's: its oldest 40 go
        kept = "SELECT request_id FROM predictions ORDER BY seq"
        assert [r for (r,) in store.connect().execute(kept)] == ["a1", "a2", "b0", "a3"]
        store.close()
        reopened = OutcomeStore(tmp_path, keep_reviews_per_key=100, keep_feedback=10)
        assert key_reviews(reopened) == {"a": 90, "b": 5}  # counted once, not again
        (version,) = reopened.connect().execute("PRAGMA user_version").fetchone()
        assert version == SCHEMA_VERSION
        reopened.close()

        # The old service run on it again (a rollback) adds rows it does not count per key,
        # and makes its `totals` again: the next open counts again.
        connection = sqlite3.connect(tmp_path / STORE_FILE)
        connection.execute("CREATE TABLE totals (name TEXT PRIMARY KEY, value INTEGER NOT NULL)")
        connection.execute(INSERT, request_row("c", "c0", 7))
        connection.commit()
        connection.close()
        assert key_reviews(OutcomeStore(tmp_path, 100, 10)) == {"a": 90, "b": 5, "c": 7}


def feedback(client, headers=None, **body):
    return client.post("/v1/feedback", json=body, headers=headers or {})


def test_feedback_trains_and_never_tests(tmp_path):
    """Exported feedback joins the training rows only: the held-out split, the quality
    gate's ground, stays the base data's, whoever sent the feedback (and the skew check
    rebuilds it)."""
    from sentiment_release.gates.checks.skew import held_out_split

    feedback = tmp_path / "feedback.txt"
    feedback.write_text("an unmistakable zebra of praise\t1\n" * 5)
    plain = train_fixture_model(tmp_path / "plain").published
    result = train_fixture_model(tmp_path / "fed", **{
        "dataset.feedback_files": json.dumps([str(feedback)])}).published  # fmt: skip
    assert result.split["train_rows"] == plain.split["train_rows"] + 5
    assert result.split["test_rows"] == plain.split["test_rows"]
    assert result.dataset["files"][-1]["source"] == "feedback"
    assert result.split["base_dataset_sha256"] == plain.dataset["sha256"]
    split = held_out_split(ModelFolder(tmp_path / "fed").load(), FIXTURE_DATA)
    assert "an unmistakable zebra of praise" not in split.test_texts


class TestFeedback:
    def test_feedback_is_recorded_once_and_moves_the_live_accuracy(self, client):
        answer = client.post("/predict/", json={"review": "great"}, headers={"X-Request-ID": "a"})
        predicted = 1 if answer.get_json()["positive"] >= 0.5 else 0
        client.post("/predict/", json={"review": "awful"}, headers={"X-Request-ID": "b"})
        recorded(client)
        first = feedback(client, request_id="a", label=predicted)
        assert first.status_code == 201
        assert first.get_json() == {
            "request_id": "a", "item": 0, "label": predicted, "predicted": predicted,
            "correct": True, "model_version": answer.get_json()["model_version"],
            "training_data": False,
        }  # fmt: skip
        again = feedback(client, request_id="a", label=predicted)
        assert again.status_code == 409
        assert again.get_json()["error"]["code"] == "duplicate_feedback"
        other = feedback(client, request_id="a", label=1 - predicted)
        assert other.status_code == 409
        assert other.get_json()["error"]["code"] == "conflicting_feedback"
        assert metric(client, "sentiment_live_accuracy") == 1.0
        assert feedback(client, request_id="b", label=1).status_code == 201
        assert metric(client, "sentiment_live_accuracy_feedback") == 2
        assert metric(client, 'sentiment_feedback_total{outcome="correct"}') >= 1
        assert metric(client, "sentiment_feedback_last_timestamp_seconds") > 0

    @pytest.mark.parametrize(
        ("body", "status", "code"),
        [
            ({"request_id": "x", "label": 2}, 400, "invalid_request"),
            ({"request_id": "x", "label": True}, 400, "invalid_request"),
            ({"request_id": "x", "label": 1.0}, 400, "invalid_request"),
            ({"request_id": "x", "label": "1"}, 400, "invalid_request"),
            ({"request_id": "x"}, 400, "invalid_request"),
            ({"request_id": "x y", "label": 1}, 400, "invalid_request"),
            ({"request_id": "x", "label": 1, "item": -1}, 400, "invalid_request"),
            ({"request_id": "x", "label": 1, "extra": 1}, 400, "invalid_request"),
            ({"request_id": "never-predicted", "label": 1}, 404, "unknown_request_id"),
            ({"request_id": "x", "label": 1, "review": "r" * 20_000}, 413, "payload_too_large"),
        ],
    )
    def test_bad_feedback_gets_a_clear_4xx(self, client, body, status, code):
        answer = feedback(client, **body)
        assert answer.status_code == status
        assert answer.get_json()["error"]["code"] == code

    def test_a_batch_item_and_its_review_make_training_data(self, client, tmp_path):
        batch = client.post("/v1/predict", json={"reviews": ["fine", "terrible food"]})
        request_id = batch.get_json()["request_id"]
        recorded(client)
        wrong = feedback(client, request_id=request_id, item=1, label=0, review="good food")
        assert (wrong.status_code, wrong.get_json()["error"]["code"]) == (422, "review_mismatch")
        right = feedback(client, request_id=request_id, item=1, label=0, review="terrible food")
        assert right.get_json()["training_data"] is True
        assert feedback(client, request_id=request_id, item=2, label=0).status_code == 404

        out = tmp_path / "feedback.txt"
        volume = str(tmp_path / "volume")
        exported = CliRunner().invoke(
            cli, ["feedback", "export", "test", "--dir", volume, "--out", str(out)]
        )
        assert exported.exit_code == 0, exported.output
        assert out.read_text() == "terrible food\t0\n"
        provenance = json.loads((tmp_path / "feedback.txt.provenance.jsonl").read_text())
        assert provenance["line"] == 1
        assert provenance["given_by"][0]["request_id"] == request_id
        assert provenance["given_by"][0]["input_sha256"] == input_sha256("terrible food")
        dataset = load_dataset(FIXTURE_DATA, ["yelp"], extra_files=[out])
        assert dataset.files[-1].source == "feedback"
        assert dataset.texts[-1] == "terrible food"
        assert dataset.fingerprint()["files"][-1]["rows"] == 1


def gauges(settings) -> dict[str, float]:
    """The monitoring gauges as a scrape reads them (no model: no drift figures)."""
    collector = MonitoringCollector(settings.monitoring, lambda: None)
    return {family.name: family.samples[0].value for family in collector.collect()}


def test_live_accuracy_weighs_each_key_the_same_however_many_labels_it_sends(tmp_path):
    """150 wrong labels from one key against 100 right ones from another: 0.5, not 0.4
    (over the latest feedback in all, one key's flood of labels moved it from 1.0 to 0.007)."""
    settings = make_settings("test", **{"monitoring.dir": tmp_path})
    assert settings.monitoring.accuracy_window >= 250
    store = OutcomeStore(tmp_path, 1000, 1000)
    prediction = Recorded(predicted=1, model_version="v1", input_sha256="0" * 64, review=None)
    assert "sentiment_live_accuracy" not in gauges(settings)
    for number in range(100):
        store.add_feedback("honest", f"h{number}", 0, 1, prediction, None)
    assert gauges(settings)["sentiment_live_accuracy"] == 1.0
    for number in range(150):
        store.add_feedback("liar", f"l{number}", 0, 0, prediction, None)
    found = gauges(settings)
    assert found["sentiment_live_accuracy"] == 0.5
    assert (found["sentiment_live_accuracy_keys"], found["sentiment_live_accuracy_feedback"]) == (
        2, 250
    )  # fmt: skip

    # The window is each key's own: the liar's latest 120 are 60 right, 60 wrong.
    for number in range(60):
        store.add_feedback("liar", f"r{number}", 0, 1, prediction, None)
    narrow = make_settings("test", **{"monitoring.dir": tmp_path,
                                      "monitoring.accuracy_window": 120})  # fmt: skip
    found = gauges(narrow)
    assert found["sentiment_live_accuracy"] == (1.0 + 0.5) / 2
    assert found["sentiment_live_accuracy_feedback"] == 100 + 120


@pytest.fixture
def keyed(trained_registry, tmp_path):
    made = {key_id: new_key(key_id, NOW) for key_id in ("acme", "rival")}
    (tmp_path / "hashes").write_text("".join(h.line() + "\n" for _, h in made.values()))
    settings = make_settings("test", **{"model.bundles_dir": trained_registry,
                                        "monitoring.dir": tmp_path / "volume",
                                        "auth.required": True,
                                        "auth.key_hashes_file": tmp_path / "hashes"})  # fmt: skip
    keys = {key_id: {"Authorization": f"Bearer {key}"} for key_id, (key, _) in made.items()}
    return create_app(settings).test_client(), keys


def test_only_the_key_that_asked_can_give_feedback(keyed):
    client, keys = keyed
    client.post("/predict/", json={"review": "good"}, headers={**keys["acme"], "X-Request-ID": "q"})
    recorded(client)
    assert feedback(client, request_id="q", label=1).status_code == 401
    rival = feedback(client, keys["rival"], request_id="q", label=1)
    assert (rival.status_code, rival.get_json()["error"]["code"]) == (404, "unknown_request_id")
    assert feedback(client, keys["acme"], request_id="q", label=1).status_code == 201


def test_imdb_traffic_drifts_further_from_a_yelp_model_than_yelp_traffic(tmp_path):
    """The fixture's yelp and imdb reviews through a model trained on its yelp ones: the
    gauges and the report both show imdb further away (the closing note has the real data's
    figures)."""
    models = tmp_path / "models"
    assert train_fixture_model(models, **{"dataset.sources": '["yelp"]'}).published
    gauges = {}
    for source in ("yelp", "imdb"):
        volume = tmp_path / source
        app = create_app(make_settings("test", **{"model.bundles_dir": models,
                                                  "monitoring.dir": volume}))  # fmt: skip
        client = app.test_client()
        for text in load_dataset(FIXTURE_DATA, [source]).texts:
            assert client.post("/predict/", json={"review": text}).status_code == 200
        recorded(client)
        gauges[source] = {name: metric(client, f"sentiment_drift_{name}")
                          for name in ("oov_share", "length_psi", "score_psi")}  # fmt: skip
        report = drift_report("test", AuditLog(volume), ModelFolder(models), window=10)
        [drift] = report.drifts
        assert drift.overall.oov_share == pytest.approx(gauges[source]["oov_share"])
        assert drift.overall.length_psi == pytest.approx(gauges[source]["length_psi"])
    assert gauges["imdb"]["oov_share"] > gauges["yelp"]["oov_share"] + 0.1
    assert gauges["imdb"]["length_psi"] > gauges["yelp"]["length_psi"]


def test_the_drift_command_writes_a_table_charts_and_a_page(client, tmp_path, trained_registry):
    for text in ("good", "bad food", "the service was slow but friendly"):
        client.post("/predict/", json={"review": text})
    recorded(client)
    out = tmp_path / "report"
    arguments = ["drift", "test", "--dir", str(tmp_path / "volume"), "--out", str(out)]
    done = CliRunner().invoke(
        cli, arguments, env={"SENTIMENT_MODEL__BUNDLES_DIR": str(trained_registry)}
    )
    assert done.exit_code == 0, done.output
    assert "| 3 |" in (out / "drift.md").read_text()
    [chart] = out.glob("drift-*.png")
    assert chart.read_bytes().startswith(b"\x89PNG")
    assert chart.name in (out / "drift.html").read_text()
    assert (tmp_path / "volume" / STORE_FILE).exists()


def test_a_rotation_while_the_log_is_read_loses_no_file_and_reads_none_twice(tmp_path):
    """Found in CI: a reader listed audit.jsonl, a worker rotated it away, the open failed."""
    for name, request_id in (("audit.jsonl.1", "old"), ("audit.jsonl", "live")):
        event = {"request_id": request_id, "predictions": []}
        (tmp_path / name).write_text(json.dumps(event) + "\n")
    log = AuditLog(tmp_path)
    listings = []

    def rotating_files() -> list[Path]:
        listed = audit_files(tmp_path)
        listings.append(listed)
        if len(listings) == 1:  # a worker rotates right after the first listing
            (tmp_path / "audit.jsonl.1").rename(tmp_path / "audit.jsonl.2")
            (tmp_path / "audit.jsonl").rename(tmp_path / "audit.jsonl.1")
            (tmp_path / "audit.jsonl").write_text(json.dumps(
                {"request_id": "new", "predictions": []}) + "\n")  # fmt: skip
        return listed

    log.files = rotating_files  # type: ignore[method-assign]
    assert [event["request_id"] for event in log.events()] == ["old", "live", "new"]
    assert len(listings) >= 3  # the first set was refused, the next one held
