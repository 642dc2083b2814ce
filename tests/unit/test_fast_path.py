"""The fast path answers the scoring endpoints' common case exactly as Flask would, and
hands everything else to Flask untouched."""

import io
import json
import logging
from datetime import UTC, datetime
from pathlib import Path

import pytest
from werkzeug.test import Client, EnvironBuilder, run_wsgi_app

from service.api_keys import new_key
from service.app import create_app
from tests.conftest import make_settings

REVIEWS = ["The food was great", "Never again.", 'Crème brûlée \u2603 "quoted" \\ back']
VALID = [
    ("/predict/", {"review": REVIEWS[0]}),
    ("/predict", {"review": REVIEWS[2]}),
    ("/v1/predict", {"reviews": REVIEWS}),
    ("/v1/predict", {"reviews": [REVIEWS[1]]}),
]
INVALID = [
    ("/predict/", b'{"review": "x"'),
    ("/predict/", b'{"review": NaN}'),
    ("/predict/", b'{"review": "x", "extra": 1}'),
    ("/predict/", b'{"review": 1}'),
    ("/predict/", b'{"review": "   "}'),
    ("/predict/", b'{"review": "a\\u0000b"}'),
    ("/predict/", b'{"review": "\\ud800"}'),
    ("/predict/", json.dumps({"review": "x" * 5001}).encode()),
    ("/predict/", b'["review"]'),
    ("/predict/", b"\xff\xfe"),
    ("/v1/predict", b'{"reviews": []}'),
    ("/v1/predict", json.dumps({"reviews": ["ok"] * 1001}).encode()),
    ("/v1/predict", b'{"reviews": ["ok", 2]}'),
    ("/v1/predict", b'{"reviews": "ok"}'),
    ("/v1/predict", b'{"review": "ok"}'),
]


@pytest.fixture
def key_and_hashes(tmp_path: Path) -> tuple[str, Path]:
    key, hashed = new_key("acme", datetime.now(UTC))
    (tmp_path / "hashes").write_text(hashed.line())
    return key, tmp_path / "hashes"


@pytest.fixture(params=[False, True], ids=["open", "keys"])
def served(request, trained_registry, key_and_hashes):
    """The app with its fast path, a client of each path, and the headers to send."""
    key, hashes = key_and_hashes
    overrides = {"model.registry_dir": trained_registry}
    headers = {}
    if request.param:
        overrides |= {"auth.required": True, "auth.key_hashes_file": hashes}
        headers = {"X-API-Key": key}
    app = create_app(make_settings("test", **overrides))
    fast = app.wsgi_app
    original = fast.flask
    delegated: list[str] = []

    def flask(environ, start_response):
        delegated.append(environ["PATH_INFO"])
        return original(environ, start_response)

    fast.flask = flask
    return Client(fast), Client(original), headers, delegated


def answer(client: Client, path: str, body: bytes, headers: dict[str, str]):
    response = client.post(path, data=body, headers=headers)
    kept = {k: v for k, v in response.headers.items() if k != "X-Request-ID"}
    return response.status_code, response.get_data(), kept, response.headers.get("X-Request-ID")


@pytest.mark.parametrize(("path", "payload"), VALID)
@pytest.mark.parametrize("content_type", ["application/json", "application/x-www-form-urlencoded"])
def test_a_valid_request_is_answered_as_flask_answers_it(served, path, payload, content_type):
    fast, flask, headers, delegated = served
    headers = {**headers, "Content-Type": content_type, "X-Request-ID": "trace-1"}
    body = json.dumps(payload).encode()
    quick = answer(fast, path, body, headers)
    assert delegated == []  # answered in front of Flask
    assert quick == answer(flask, path, body, headers)
    assert quick[0] == 200
    assert quick[3] == "trace-1"


def test_a_request_without_an_id_gets_a_new_one(served):
    fast, _, headers, _ = served
    first = fast.post("/v1/predict", json={"reviews": ["fine"]}, headers=headers)
    second = fast.post("/v1/predict", json={"reviews": ["fine"]}, headers=headers)
    ids = [response.headers["X-Request-ID"] for response in (first, second)]
    assert ids[0] != ids[1]
    assert [len(i) for i in ids] == [32, 32]
    assert first.get_json()["request_id"] == ids[0]
    bad = fast.post("/predict/", json={"review": "x"}, headers={**headers, "X-Request-ID": "a b"})
    assert bad.headers["X-Request-ID"] != "a b"


@pytest.mark.parametrize(("path", "body"), INVALID)
def test_whatever_flask_would_refuse_goes_to_flask(served, path, body):
    fast, flask, headers, delegated = served
    headers = {**headers, "X-Request-ID": "trace-2"}
    quick = answer(fast, path, body, headers)
    assert delegated == [path]
    assert quick == answer(flask, path, body, headers)
    assert 400 <= quick[0] < 500


@pytest.mark.parametrize(
    "headers",
    [{}, {"X-API-Key": "snt_acme_" + "A" * 43}, {"Authorization": "Basic x", "X-API-Key": "k"}],
)
def test_without_a_valid_key_flask_answers_401(trained_registry, key_and_hashes, headers):
    _, hashes = key_and_hashes
    app = create_app(make_settings("test", **{"model.registry_dir": trained_registry,
                                              "auth.required": True,
                                              "auth.key_hashes_file": hashes}))  # fmt: skip
    response = app.test_client().post("/predict/", json={"review": "fine"}, headers=headers)
    assert response.status_code == 401
    assert response.get_json()["error"]["code"] == "unauthorized"


def test_other_methods_chunked_and_oversize_bodies_go_to_flask(served):
    fast, _, headers, delegated = served
    assert fast.get("/predict/", headers=headers).status_code == 405
    builder = EnvironBuilder(path="/predict/", method="POST",
                             input_stream=io.BytesIO(b'{"review": "fine"}'),
                             headers={**headers, "Transfer-Encoding": "chunked"})  # fmt: skip
    environ = builder.get_environ()
    environ.pop("CONTENT_LENGTH", None)
    environ["wsgi.input_terminated"] = True  # as gunicorn says of a chunked body
    body, status, _ = run_wsgi_app(fast.application, environ, buffered=True)
    assert status.startswith("200"), b"".join(body)
    huge = fast.post("/predict/", data=b"x" * 1_048_577, headers=headers)
    assert huge.status_code == 413
    assert delegated == ["/predict/"] * 3


def test_metrics_and_access_lines_are_the_same_as_flasks(served, caplog):
    fast, _, headers, _ = served
    caplog.set_level(logging.INFO, logger="service.access")
    for path in ("/predict/", "/predict"):
        assert fast.post(path, json={"review": "Great food"}, headers=headers).status_code == 200
    fast.post("/v1/predict", json={"reviews": ["Great food", "Awful", "Awful"]}, headers=headers)
    metrics = fast.get("/metrics", headers=headers).get_data(as_text=True)
    assert 'route="/predict/",status="200"} 2.0' in metrics
    assert 'route="/v1/predict",status="200"} 1.0' in metrics
    labelled = {
        line.split('"')[1]: float(line.split()[-1])
        for line in metrics.splitlines()
        if line.startswith("sentiment_predictions_total{")
    }
    assert sum(labelled.values()) == 5
    access = [r for r in caplog.records if r.name == "service.access"]
    assert [(r.route, r.method, r.status) for r in access[:3]] == [
        ("/predict/", "POST", 200), ("/predict/", "POST", 200), ("/v1/predict", "POST", 200),
    ]  # fmt: skip
    assert {getattr(r, "key_id", None) for r in access[:3]} == {"acme" if headers else None}
    if headers:
        assert 'sentiment_api_key_requests_total{key_id="acme"} 4.0' in metrics


def test_a_service_that_is_not_ready_is_flasks_to_answer(tmp_path):
    app = create_app(make_settings("test", **{"model.registry_dir": tmp_path / "none"}))
    response = app.test_client().post("/predict/", json={"review": "fine"})
    assert response.status_code == 503
    assert response.get_json()["error"]["code"] == "model_not_ready"


def test_a_failure_inside_the_fast_path_is_flasks_json_500(served, monkeypatch):
    fast, _, headers, delegated = served
    scorer = fast.application._state.scorer

    def broken(texts):
        raise RuntimeError("scorer fell over")

    monkeypatch.setattr(scorer, "predict", broken)
    response = fast.post("/predict/", json={"review": "fine"}, headers=headers)
    assert response.status_code == 500
    assert response.get_json() == {
        "error": {"code": "internal_error", "message": "internal server error"}
    }
    assert response.headers["X-Request-ID"]
    assert delegated == ["/predict/"]


@pytest.mark.parametrize("length", ["\u00b2", "\u0661\u0667", "0" * 4990 + "17", "17 ", "-1"])
def test_an_odd_content_length_is_never_read_here(served, length):
    """Digits str.isdigit accepts and int() refuses, or reads otherwise than Werkzeug."""
    fast, _, headers, delegated = served
    body = b'{"review": "fine"}'
    environ = EnvironBuilder(path="/predict/", method="POST", data=body,
                             headers=headers).get_environ()  # fmt: skip
    environ["CONTENT_LENGTH"] = length
    _, status, _ = run_wsgi_app(fast.application, environ, buffered=True)
    assert not status.startswith("5"), status
    assert delegated == ["/predict/"]


def test_a_short_body_is_flasks_to_answer(served):
    fast, _, headers, delegated = served
    environ = EnvironBuilder(path="/predict/", method="POST", data=b'{"review": "fi',
                             headers=headers).get_environ()  # fmt: skip
    environ["CONTENT_LENGTH"] = "18"  # two bytes more than sent
    _, status, _ = run_wsgi_app(fast.application, environ, buffered=True)
    assert status.startswith("400"), status
    assert delegated == ["/predict/"]


def test_without_a_valid_key_not_a_byte_of_the_body_is_read(trained_registry, key_and_hashes):
    _, hashes = key_and_hashes
    app = create_app(make_settings("test", **{"model.registry_dir": trained_registry,
                                              "auth.required": True,
                                              "auth.key_hashes_file": hashes}))  # fmt: skip

    class Unread(io.BytesIO):
        def read(self, *args):
            raise AssertionError("the body was read before the key was checked")

    wrong = {"X-API-Key": "snt_acme_" + "A" * 43}
    environ = EnvironBuilder(path="/predict/", method="POST", data=b'{"review": "fine"}',
                             headers=wrong).get_environ()  # fmt: skip
    environ["wsgi.input"] = Unread()
    _, status, _ = run_wsgi_app(app.wsgi_app, environ, buffered=True)
    assert status.startswith("401"), status
