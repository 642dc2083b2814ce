"""The API over real HTTP, against gunicorn (or the service given by --base-url)."""

import json
import shutil
import subprocess

import pytest
import requests

from tests.conftest import make_settings

pytestmark = pytest.mark.integration
FORM = {"Content-Type": "application/x-www-form-urlencoded"}
# The deployed service reads this repository's config too.
LIMITS = make_settings("test").service


def test_the_documented_curl_call_gets_a_negative_leaning_score(base_url):
    if shutil.which("curl") is None:
        pytest.skip("curl is not installed")
    output = subprocess.run(
        [
            "curl",
            "-sS",
            "-X",
            "POST",
            f"{base_url}/predict/",
            "-d",
            '{"review":"Thanks, I hate it"}',
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    ).stdout
    body = json.loads(output)
    assert body["negative"] > body["positive"]
    assert body["positive"] + body["negative"] == pytest.approx(1.0)


@pytest.mark.parametrize("path", ["/predict/", "/predict"])
def test_single_review_with_a_form_content_type(base_url, path):
    response = requests.post(
        f"{base_url}{path}", data='{"review": "I love this phone"}', headers=FORM, timeout=10
    )
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json"
    assert response.json()["positive"] > 0.5


def test_batch_call(base_url):
    response = requests.post(
        f"{base_url}/v1/predict",
        json={"reviews": ["wonderful, I love it", "awful, I hate it"]},
        headers={"X-Request-ID": "batch-1"},
        timeout=10,
    )
    assert response.status_code == 200
    body = response.json()
    assert [p["label"] for p in body["predictions"]] == ["positive", "negative"]
    assert body["request_id"] == response.headers["X-Request-ID"] == "batch-1"


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "code"),
    [
        ("POST", "/predict/", b"{oops", 400, "invalid_json"),
        ("POST", "/predict/", b'{"review": "\xff\xfe"}', 400, "invalid_json"),
        ("POST", "/predict/", b'{"review": null}', 400, "invalid_request"),
        ("POST", "/predict/", b'{"review": {"nested": [1e308]}}', 400, "invalid_request"),
        ("POST", "/predict/", b'{"review": "   "}', 422, "empty_review"),
        ("POST", "/predict/", b'{"review": "nul \\u0000 inside"}', 422, "invalid_text"),
        ("POST", "/predict/", b'{"review": "' + b"x" * 5001 + b'"}', 422, "review_too_long"),
        (
            "POST",
            "/v1/predict",
            json.dumps({"reviews": ["a"] * (LIMITS.max_batch_size + 1)}).encode(),
            422,
            "batch_too_large",
        ),
        (
            "POST",
            "/predict/",
            b'{"review": "' + b"x" * (LIMITS.max_body_bytes + 10) + b'"}',
            413,
            "payload_too_large",
        ),
        ("GET", "/no/such/path", None, 404, "not_found"),
        ("PUT", "/predict/", b"{}", 405, "method_not_allowed"),
    ],
)
def test_every_error_class_is_json(base_url, method, path, body, status, code):
    response = requests.request(method, f"{base_url}{path}", data=body, headers=FORM, timeout=10)
    assert response.status_code == status
    assert response.headers["Content-Type"] == "application/json"
    assert response.json()["error"]["code"] == code


@pytest.mark.parametrize("size", [2_000_000, 12_000_000])
def test_a_body_of_megabytes_gets_the_413_json_not_a_reset(base_url, size):
    body = b'{"reviews": ["' + b"x" * size + b'"]}'
    response = requests.post(f"{base_url}/v1/predict", data=body, headers=FORM, timeout=30)
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"


def test_health_readiness_and_model_metadata(base_url):
    assert requests.get(f"{base_url}/healthz", timeout=5).json() == {"status": "ok"}
    ready = requests.get(f"{base_url}/readyz", timeout=5)
    assert ready.status_code == 200
    info = requests.get(f"{base_url}/v1/model", timeout=5).json()
    assert info["model"]["version"] == ready.json()["model_version"]
    assert info["service"]["environment"] == "test"


def test_openapi_and_metrics_are_served(base_url):
    document = requests.get(f"{base_url}/openapi.json", timeout=5).json()
    assert document["openapi"].startswith("3.")
    assert "/v1/predict" in document["paths"]
    metrics = requests.get(f"{base_url}/metrics", timeout=5)
    assert metrics.headers["Content-Type"].startswith("text/plain")
    assert "sentiment_model_ready 1.0" in metrics.text


def test_an_incoming_request_id_is_propagated(base_url):
    response = requests.get(f"{base_url}/healthz", headers={"X-Request-ID": "trace-77"}, timeout=5)
    assert response.headers["X-Request-ID"] == "trace-77"
    assert len(requests.get(f"{base_url}/healthz", timeout=5).headers["X-Request-ID"]) == 32
