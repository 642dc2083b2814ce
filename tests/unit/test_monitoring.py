"""The model watched after release: audit events (service/recorder.py, service/audit.py),
feedback (service/feedback.py, service/outcomes.py), the drift and accuracy gauges
(service/monitoring.py, model/drift.py), and what the release tooling makes of them
(observe/: `sentiment audit find`, `sentiment drift`, `sentiment feedback export`)."""

import contextlib
import json
import multiprocessing
import os
import queue
import resource
import signal
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace

import pytest
from click.testing import CliRunner

from cli.main import cli
from model import ModelRegistry
from model.drift import Distribution, Vocabulary, decile_edges, distribution_of, psi
from observe.audit_log import AuditLog
from observe.drift_report import drift_report
from service.api_keys import new_key
from service.app import create_app
from service.audit import AuditFile, audit_files
from service.outcomes import STORE_FILE, OutcomeStore, input_sha256
from service.recorder import Recorder, Scored
from service.settings import ConfigError
from tests.conftest import FIXTURE_DATA, make_settings, train_fixture_model
from training.dataset import load_dataset

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
        reference = ModelRegistry(trained_registry).metadata().reference
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

    def test_the_fast_path_and_flask_write_the_same_event(self, client, tmp_path):
        body = {"review": "the soup was cold"}
        client.post("/predict/", json=body, headers={"X-Request-ID": "fast"})
        app = client.application
        fast_path, app.wsgi_app = app.wsgi_app, app.wsgi_app.flask  # Flask's path alone
        try:
            client.post("/predict/", json=body, headers={"X-Request-ID": "flask"})
        finally:
            app.wsgi_app = fast_path
        recorded(client)
        fast, flask = audit_events(tmp_path / "volume")
        assert (fast["request_id"], flask["request_id"]) == ("fast", "flask")
        for event in (fast, flask):
            event.pop("time"), event.pop("request_id"), event.pop("latency_ms")
        assert fast == flask

    def test_review_texts_are_kept_only_where_config_allows(self, trained_registry, tmp_path):
        app = create_app(make_settings("dev", **{"model.registry_dir": trained_registry,
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
        app = create_app(make_settings("test", **{"model.registry_dir": trained_registry,
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
        scorer = create_app(make_settings("test", **{"model.registry_dir": trained_registry})
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

    def test_the_store_keeps_reviews_not_requests(self, tmp_path):
        store = OutcomeStore(tmp_path, keep_reviews=100, keep_feedback=10)
        for number in range(10):
            store.add_requests([("", f"r{number}", 0.0, "v", "champion", 30, "[]")])
        (rows,) = store.connect().execute("SELECT COUNT(*) FROM predictions").fetchone()
        (total,) = store.connect().execute("SELECT value FROM totals").fetchone()
        assert (rows, total) == (3, 90)  # the oldest seven batches of 30 went
        kept = [r for (r,) in store.connect().execute("SELECT request_id FROM predictions")]
        assert kept == ["r7", "r8", "r9"]

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


def feedback(client, headers=None, **body):
    return client.post("/v1/feedback", json=body, headers=headers or {})


def test_feedback_trains_and_never_tests(tmp_path):
    """Exported feedback joins the training rows only: the held-out split, the quality
    gate's ground, stays the base data's, whoever sent the feedback (and the skew check
    rebuilds it)."""
    from gates.checks.skew import held_out_split

    feedback = tmp_path / "feedback.txt"
    feedback.write_text("an unmistakable zebra of praise\t1\n" * 5)
    plain = train_fixture_model(tmp_path / "plain").published
    result = train_fixture_model(tmp_path / "fed", **{
        "dataset.feedback_files": json.dumps([str(feedback)])}).published  # fmt: skip
    assert result.split["train_rows"] == plain.split["train_rows"] + 5
    assert result.split["test_rows"] == plain.split["test_rows"]
    assert result.dataset["files"][-1]["source"] == "feedback"
    assert result.split["base_dataset_sha256"] == plain.dataset["sha256"]
    split = held_out_split(ModelRegistry(tmp_path / "fed").load(), FIXTURE_DATA)
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


@pytest.fixture
def keyed(trained_registry, tmp_path):
    made = {key_id: new_key(key_id, NOW) for key_id in ("acme", "rival")}
    (tmp_path / "hashes").write_text("".join(h.line() + "\n" for _, h in made.values()))
    settings = make_settings("test", **{"model.registry_dir": trained_registry,
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
        app = create_app(make_settings("test", **{"model.registry_dir": models,
                                                  "monitoring.dir": volume}))  # fmt: skip
        client = app.test_client()
        for text in load_dataset(FIXTURE_DATA, [source]).texts:
            assert client.post("/predict/", json={"review": text}).status_code == 200
        recorded(client)
        gauges[source] = {name: metric(client, f"sentiment_drift_{name}")
                          for name in ("oov_share", "length_psi", "score_psi")}  # fmt: skip
        report = drift_report("test", AuditLog(volume), ModelRegistry(models), window=10)
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
        cli, arguments, env={"SENTIMENT_MODEL__REGISTRY_DIR": str(trained_registry)}
    )
    assert done.exit_code == 0, done.output
    assert "| 3 |" in (out / "drift.md").read_text()
    [chart] = out.glob("drift-*.png")
    assert chart.read_bytes().startswith(b"\x89PNG")
    assert chart.name in (out / "drift.html").read_text()
    assert (tmp_path / "volume" / STORE_FILE).exists()
