"""Smoke checks of a deployed service: it is up, it is the expected build, every endpoint works.

Run by the stage and prod gates and after every rollback:
    pytest tests/smoke --base-url URL --expected-model-sha256 SHA --expected-environment ENV
"""

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import GATE_API_KEY

TIMEOUT = 10


def test_alive_and_ready(deployed_url):
    # Open to probes: no key.
    assert requests.get(f"{deployed_url}/healthz", timeout=TIMEOUT).json() == {"status": "ok"}
    ready = requests.get(f"{deployed_url}/readyz", timeout=TIMEOUT)
    assert ready.status_code == 200, ready.text
    assert ready.json()["status"] == "ready"


def test_asks_for_a_key_where_the_gates_hold_one(deployed_url):
    if not GATE_API_KEY:
        pytest.skip("the service asks for no API key here")
    response = requests.post(f"{deployed_url}/predict/", json={"review": "x"}, timeout=TIMEOUT)
    assert response.status_code == 401, response.text
    assert response.json()["error"]["code"] == "unauthorized"


def test_serves_the_expected_model_in_the_expected_environment(deployed_url, api_session, request):
    described = api_session.get(f"{deployed_url}/v1/model", timeout=TIMEOUT).json()
    sha256 = request.config.getoption("--expected-model-sha256")
    environment = request.config.getoption("--expected-environment")
    if not (sha256 or environment):
        pytest.skip("nothing expected: pass --expected-model-sha256/--expected-environment")
    if sha256:
        assert described["model"]["sha256"] == sha256
    if environment:
        assert described["service"]["environment"] == environment


def test_predicts_one_review(deployed_url, api_session):
    response = api_session.post(
        f"{deployed_url}/predict/", json={"review": "A wonderful, friendly place."}, timeout=TIMEOUT
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert 0 <= body["positive"] <= 1
    assert body["positive"] + body["negative"] == pytest.approx(1)


def test_predicts_a_batch(deployed_url, api_session):
    reviews = ["Great value, works perfectly.", "Broke after one day, avoid."]
    response = api_session.post(
        f"{deployed_url}/v1/predict", json={"reviews": reviews}, timeout=TIMEOUT
    )
    assert response.status_code == 200, response.text
    predictions = response.json()["predictions"]
    assert len(predictions) == len(reviews)
    assert all(item["label"] in ("positive", "negative") for item in predictions)


def test_rejects_bad_input_with_a_json_error(deployed_url, api_session):
    response = api_session.post(f"{deployed_url}/predict/", json={"text": "x"}, timeout=TIMEOUT)
    assert response.status_code == 400
    assert "error" in response.json()


def test_exposes_metrics(deployed_url, api_session):
    api_session.post(f"{deployed_url}/predict/", json={"review": "Fine."}, timeout=TIMEOUT)
    text = api_session.get(f"{deployed_url}/metrics", timeout=TIMEOUT).text
    families = {family.name: family for family in text_string_to_metric_families(text)}
    [ready] = families["sentiment_model_ready"].samples
    assert ready.value == 1
    scored = families["sentiment_predictions"].samples
    assert sum(s.value for s in scored if s.name == "sentiment_predictions_total") >= 1
