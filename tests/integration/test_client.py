"""The API client (client/sentiment_client) against real servers: batches cut to the
service's limits, the request id on answers and errors, and retries for exactly what is
safe to retry (a connection that failed, a 503), never for a 4xx or a 429."""

import json
import re
import socket
import threading
import time

import pytest

from sentiment_client import (
    ConnectionFailed,
    InvalidRequest,
    NotReady,
    Prediction,
    RateLimited,
    SentimentClient,
    Unauthorized,
)
from sentiment_release.delivery.api_keys import ApiKeyStore
from tests.integration.server import free_port

pytestmark = pytest.mark.integration

# About 600 characters: three fit a body of 2,048 bytes, not four.
LONG = "The food was great and the staff were lovely, we will be back next week. " * 8


class Sleeps(list):
    """Records the client's back-off delays instead of sleeping them."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture(scope="module")
def served(trained_registry, tmp_path_factory):
    from tests.integration.server import running_server

    workdir = tmp_path_factory.mktemp("client")
    store = ApiKeyStore(workdir / "api-keys")
    keys = {key_id: store.create("stage", key_id) for key_id in ("reader", "limited")}
    settings = {
        "SENTIMENT_AUTH__REQUIRED": "true",
        "SENTIMENT_AUTH__KEY_HASHES_FILE": str(store.hashes_file("stage")),
        "SENTIMENT_SERVICE__MAX_BATCH_SIZE": "5",
        "SENTIMENT_SERVICE__MAX_BODY_BYTES": "2048",
        "SENTIMENT_RATE_LIMIT__ENABLED": "true",
        "SENTIMENT_RATE_LIMIT__PER_KEY": '{"limited": {"per_second": 0.001, "burst": 1}}',
    }
    with running_server(workdir / "server", trained_registry, workers=1,
                        settings=settings) as server:  # fmt: skip
        yield server, keys


def test_many_reviews_go_in_batches_the_service_accepts_in_order(served):
    server, keys = served
    reviews = [f"{LONG} {number}" for number in range(7)] + ["Awful.", "Lovely."]
    with SentimentClient(server.base_url, keys["reader"]) as client:
        assert [len(batch) for batch in client.batches(reviews)] == [3, 3, 3]
        assert [len(batch) for batch in client.batches(["Fine."] * 12)] == [5, 5, 2]
        predictions = client.predict_many(reviews)
        one_by_one = [client.predict(review) for review in reviews]
    assert [(p.label, p.positive) for p in predictions] == [
        (p.label, p.positive) for p in one_by_one
    ]
    assert [p.item for p in predictions] == [0, 1, 2] * 3
    assert len({p.request_id for p in predictions}) == 3
    assert predictions[-1].label == "positive"
    assert predictions[-2].label == "negative"


def feedback_when_recorded(client, prediction, label) -> dict:
    """Predictions are recorded within about a second of their answer."""
    deadline = time.monotonic() + 5
    while True:
        try:
            return client.feedback(prediction, label)
        except InvalidRequest as error:
            if error.code != "unknown_request_id" or time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def test_the_request_id_is_on_answers_errors_and_feedback(served):
    server, keys = served
    sleeps = Sleeps()
    with SentimentClient(server.base_url, keys["reader"], sleep=sleeps) as client:
        prediction = client.predict("The staff were lovely.", request_id="order-1234")
        assert prediction.request_id == "order-1234"
        with pytest.raises(InvalidRequest) as refused:
            client.predict("   ", request_id="order-1235")
        recorded = feedback_when_recorded(client, prediction, 1)
    assert (refused.value.status, refused.value.code) == (422, "empty_review")
    assert refused.value.request_id == "order-1235"
    assert "order-1235" in str(refused.value)
    assert recorded["request_id"] == "order-1234"
    assert recorded["label"] == 1
    assert sleeps == []  # a 4xx is never retried


def test_no_retry_without_a_key_or_over_the_rate_limit(served):
    server, keys = served
    sleeps = Sleeps()
    stranger = SentimentClient(server.base_url, "snt_nobody_" + "A" * 43, sleep=sleeps)
    with stranger, pytest.raises(Unauthorized):
        stranger.predict("Great.")
    with SentimentClient(server.base_url, keys["limited"], sleep=sleeps) as client:
        client.predict("Great.")
        with pytest.raises(RateLimited) as limited:
            client.predict("Great.")
    assert limited.value.retry_after == 1000
    assert sleeps == []
    assert server.logs().count('"status": 429') == 1  # sent once, not retried


def test_a_503_is_retried_with_backoff_then_raised(trained_registry, own_server, tmp_path):
    empty = tmp_path / "no-models"
    empty.mkdir()
    server = own_server(tmp_path / "server", empty, workers=1)
    sleeps = Sleeps()
    client = SentimentClient(server.base_url, retries=3, backoff=0.5, sleep=sleeps)
    with client, pytest.raises(NotReady) as not_ready:
        client.predict("Great.", request_id="retried-503")
    assert not_ready.value.code == "model_not_ready"
    assert len(sleeps) == 3
    assert all(0 <= delay <= 0.5 * 2**attempt for attempt, delay in enumerate(sleeps))
    assert server.logs().count('"request_id": "retried-503"') == 4  # one id for every try


def test_a_refused_connection_is_retried_until_the_service_is_up(
    trained_registry, own_server, tmp_path
):
    port = free_port()
    started = []

    def sleep(seconds: float) -> None:  # the service comes up during the second back-off
        if len(started) == 1:
            started.append(own_server(tmp_path / "server", trained_registry, workers=1,
                                      port=port))  # fmt: skip
        else:
            started.append(None)

    with SentimentClient(f"http://127.0.0.1:{port}", retries=3, sleep=sleep) as client:
        prediction = client.predict("Lovely staff.")
    assert prediction.label == "positive"
    assert len(started) == 2
    with (SentimentClient(f"http://127.0.0.1:{free_port()}", retries=2, sleep=Sleeps()) as gone,
          pytest.raises(ConnectionFailed, match="after 3 attempts")):  # fmt: skip
        gone.predict("Lovely staff.")


def test_sentiment_predict_scores_through_the_client(served, tmp_path):
    from click.testing import CliRunner

    from sentiment_release.cli.main import cli

    server, keys = served
    runner = CliRunner()
    reviews = tmp_path / "reviews.txt"
    reviews.write_text("Lovely staff.\n\nThe soup was cold and awful.\n")
    done = runner.invoke(cli, ["predict", "Great food!", "--file", str(reviews), "--url",
                               server.base_url, "--json"],
                         env={"SENTIMENT_API_KEY": keys["reader"]})  # fmt: skip
    assert done.exit_code == 0, done.output
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert [(line["review"], line["label"]) for line in lines] == [
        ("Great food!", "positive"), ("Lovely staff.", "positive"),
        ("The soup was cold and awful.", "negative"),
    ]  # fmt: skip
    assert len({line["request_id"] for line in lines}) == 1

    refused = runner.invoke(cli, ["predict", "Great food!", "--url", server.base_url],
                            env={"SENTIMENT_API_KEY": ""})  # fmt: skip
    assert refused.exit_code == 1
    assert "401 unauthorized: a valid API key is required" in refused.output
    for argv, message in (
        (["predict", "x"], "give one of --env ENV and --url URL"),
        (["predict", "x", "--url", "ftp://host"], "is not an http(s) URL"),
        (["predict", "--url", server.base_url], "give reviews to score"),
    ):
        failed = runner.invoke(cli, argv)
        assert failed.exit_code == 2
        assert message in failed.output


class Canned:
    """A socket server that reads each request, then answers `reply` (raw bytes), or
    closes the connection without a word (None): what a crash after a request looks like."""

    def __init__(self, reply: bytes | None):
        self.reply = reply
        self.requests = 0
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                connection, _ = self.listener.accept()
            except OSError:
                return
            with connection:
                data = b""
                while b"\r\n\r\n" not in data:
                    data += connection.recv(65536)
                head, _, body = data.partition(b"\r\n\r\n")
                length = int(re.search(rb"(?i)content-length: *(\d+)", head)[1])
                while len(body) < length:
                    body += connection.recv(65536)
                self.requests += 1
                if self.reply is not None:
                    connection.sendall(self.reply)

    def close(self) -> None:
        self.listener.close()


@pytest.fixture
def canned():
    made = []

    def make(reply: bytes | None) -> Canned:
        made.append(Canned(reply))
        return made[-1]

    yield make
    for server in made:
        server.close()


def test_a_connection_lost_after_sending_retries_a_prediction_never_feedback(canned):
    server = canned(None)
    sleeps = Sleeps()
    client = SentimentClient(server.url, retries=2, sleep=sleeps)
    with pytest.raises(ConnectionFailed, match="after 3 attempts"):
        client.predict_batch(["Great."])  # scoring twice is harmless
    assert (server.requests, len(sleeps)) == (3, 2)
    prediction = Prediction("positive", 0.9, 0.1, "v1", "order-1234", 0)
    with pytest.raises(ConnectionFailed, match="after 1 attempts"):
        client.feedback(prediction, 1)  # it may have been recorded: never twice
    assert (server.requests, len(sleeps)) == (4, 2)


def test_a_503_that_will_not_pass_is_not_retried_and_retry_after_is_read_safely(canned):
    body = b'{"error": {"code": "no_outcomes", "message": "predictions are not recorded here"}}'
    server = canned(
        b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
        b"Content-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(body), body)
    )
    sleeps = Sleeps()
    client = SentimentClient(server.url, retries=3, sleep=sleeps)
    with pytest.raises(NotReady, match="no_outcomes"):
        client.feedback(Prediction("positive", 0.9, 0.1, "v1", "order-1234", 0), 1)
    assert (server.requests, sleeps) == (1, [])
    limited = canned(
        b"HTTP/1.1 429 Too Many Requests\r\nRetry-After: \xc2\xb2\r\n"
        b"Content-Length: 2\r\nConnection: close\r\n\r\n{}"
    )
    with pytest.raises(RateLimited) as refused:
        SentimentClient(limited.url, sleep=sleeps).predict("Great.")
    assert refused.value.retry_after == 1.0  # an unreadable Retry-After: one second
    assert refused.value.code == "http_429"
