"""Log lines are JSON objects; review texts stay out of them unless asked for, at DEBUG only."""

import json
import time
from datetime import UTC, datetime

import pytest

from sentiment.serving.api_keys import new_key
from sentiment.serving.app import create_app
from sentiment.serving.request_log import ACCESS_LINES, AccessLines
from tests.conftest import make_settings

PRIVATE_REVIEW = "my card number is 4111 and I hate this"


def log_lines(capsys) -> list[dict]:
    ACCESS_LINES.flush()  # the access lines are written in batches
    return [json.loads(line) for line in capsys.readouterr().err.splitlines()]


def app_client(registry, environment="test", **overrides):
    """Built inside the test, so its log handler writes to the stderr capsys captures.
    Where the environment asks for API keys, the client presents one."""
    key, hashed = new_key("tester", datetime.now(UTC))
    hashes = registry.parent / f"key-hashes-{hashed.salt.hex()}"
    hashes.write_text(hashed.line())
    overrides = {"model.bundles_dir": registry, "auth.key_hashes_file": hashes, **overrides}
    settings = make_settings(environment, **overrides)
    client = create_app(settings).test_client()
    client.environ_base["HTTP_X_API_KEY"] = key
    return client


def test_each_request_logs_one_json_line_with_its_id(trained_registry, capsys):
    client = app_client(trained_registry)
    client.post("/v1/predict", json={"reviews": [PRIVATE_REVIEW]}, headers={"X-Request-ID": "r-1"})
    client.get("/nope")
    lines = log_lines(capsys)
    access = [line for line in lines if line["logger"] == "sentiment.serving.access"]
    assert [(a["route"], a["status"]) for a in access] == [("/v1/predict", 200), ("unmatched", 404)]
    first = access[0]
    assert first["request_id"] == "r-1"
    assert first["method"] == "POST"
    assert first["latency_ms"] >= 0
    assert first["level"] == "INFO"
    assert first["timestamp"].startswith("20")
    assert PRIVATE_REVIEW not in json.dumps(lines)


@pytest.mark.parametrize("environment", ["dev", "stage"])
def test_review_text_is_logged_only_when_enabled_and_only_at_debug(
    trained_registry, capsys, environment
):
    client = app_client(
        trained_registry,
        environment,
        **{"service.log_review_text": "true", "service.log_level": "DEBUG"},
    )
    client.post("/predict/", json={"review": PRIVATE_REVIEW}, headers={"X-Request-ID": "r-2"})
    lines = log_lines(capsys)
    with_text = [line for line in lines if PRIVATE_REVIEW in json.dumps(line)]
    assert len(with_text) == 1
    assert with_text[0]["level"] == "DEBUG"
    assert with_text[0]["reviews"] == [PRIVATE_REVIEW]
    assert with_text[0]["request_id"] == "r-2"


def test_review_text_is_not_logged_at_info_even_when_enabled(trained_registry, capsys):
    client = app_client(trained_registry, "stage", **{"service.log_review_text": "true"})
    client.post("/predict/", json={"review": PRIVATE_REVIEW})
    assert PRIVATE_REVIEW not in capsys.readouterr().err


def test_access_lines_are_written_in_batches_soon_after_their_request(trained_registry, capsys):
    """By the writer thread within a fraction of a second, without anyone flushing."""
    client = app_client(trained_registry)
    client.get("/healthz", headers={"X-Request-ID": "soon"})
    deadline = time.monotonic() + 10 * AccessLines.FLUSH_SECONDS
    written = ""
    while '"soon"' not in written and time.monotonic() < deadline:
        time.sleep(AccessLines.FLUSH_SECONDS / 4)
        written += capsys.readouterr().err
    [line] = [json.loads(line) for line in written.splitlines() if '"soon"' in line]
    assert (line["route"], line["status"], line["method"]) == ("/healthz", 200, "GET")


def test_an_access_line_is_json_whatever_its_values(capsys):
    lines = AccessLines()
    lines.add("r-1", "GET", 'a "quoted" \\ route', 404, 0.5, None)
    lines.add("r-2", "POST", "/predict/", 200, 0.001234, "acme")
    lines.flush()
    written = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    assert written[0]["route"] == 'a "quoted" \\ route'
    assert "key_id" not in written[0]
    assert (written[1]["key_id"], written[1]["latency_ms"]) == ("acme", 1.234)
    stamp = datetime.fromisoformat(written[1]["timestamp"])
    assert abs((datetime.now(UTC) - stamp).total_seconds()) < 5
