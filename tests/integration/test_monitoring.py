"""Monitoring on a real gunicorn server with two workers: each answers and records its own
share of the traffic into one audit log (rotated under both, no file past its bound) and
one outcome store; feedback finds a prediction whichever worker made it; the gauges read
the same windows from either."""

import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from sentiment_release.observe.audit_log import AuditLog

pytestmark = pytest.mark.integration


def test_two_workers_share_one_audit_log_and_one_outcome_store(own_server, trained_registry,
                                                                tmp_path):  # fmt: skip
    bounds = {"SENTIMENT_MONITORING__AUDIT_MAX_BYTES": "4096",
              "SENTIMENT_MONITORING__AUDIT_BACKUPS": "100"}  # fmt: skip
    server = own_server(tmp_path / "server", trained_registry, workers=2, settings=bounds)
    url = server.base_url

    def predict(number: int) -> int:
        response = requests.post(f"{url}/v1/predict", timeout=10,
                                 json={"reviews": [f"review {number}", "good"]},
                                 headers={"X-Request-ID": f"r-{number}"})  # fmt: skip
        return response.status_code

    with ThreadPoolExecutor(8) as pool:
        assert set(pool.map(predict, range(200))) == {200}
    volume = tmp_path / "server" / "monitoring"
    deadline = time.monotonic() + 10
    while len(events := list(AuditLog(volume).events())) < 200:
        assert time.monotonic() < deadline, f"{len(events)} of 200 events"
        time.sleep(0.1)
    assert sorted(e["request_id"] for e in events) == sorted(f"r-{n}" for n in range(200))
    assert {len(e["predictions"]) for e in events} == {2}
    files = AuditLog(volume).files()
    assert len(files) > 5
    assert max(f.stat().st_size for f in files) <= 4096

    # Whichever worker answered, either finds the prediction: all 200 take feedback.
    def give(number: int) -> int:
        body = {"request_id": f"r-{number}", "item": 1, "label": 1}
        return requests.post(f"{url}/v1/feedback", json=body, timeout=10).status_code

    with ThreadPoolExecutor(8) as pool:
        assert set(pool.map(give, range(200))) == {201}
    readings = set()
    for _ in range(6):  # scrapes land on both workers
        text = requests.get(f"{url}/metrics", timeout=10).text
        wanted = ("sentiment_live_accuracy", "sentiment_drift_window")
        gauges = {line.split()[0]: float(line.split()[1]) for line in text.splitlines()
                  if line.startswith(wanted)}  # fmt: skip
        readings.add((gauges["sentiment_live_accuracy_feedback"],
                      gauges["sentiment_live_accuracy_keys"],
                      gauges["sentiment_drift_window_reviews"]))  # fmt: skip
    assert readings == {(200.0, 1.0, 400.0)}  # no API keys here: one key id, ""
