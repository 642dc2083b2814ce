"""Every endpoint through Flask's test client; responses are checked against /openapi.json."""

import hashlib
import json
import re
from datetime import UTC, datetime
from importlib.metadata import version

import pytest

from sentiment.model import ModelFolder
from sentiment.model.bundle import MODEL_FILE
from sentiment.serving.api_keys import new_key
from sentiment.serving.app import create_app
from sentiment.serving.predict import ROUTES
from tests.conftest import make_settings, train_fixture_model


def curl_post(client, body: str, path="/predict/"):
    """What `curl -X POST URL -d '<body>'` sends: a form Content-Type around JSON text."""
    return client.post(path, data=body, content_type="application/x-www-form-urlencoded")


def test_the_documented_curl_call_scores_one_review(client):
    response = curl_post(client, '{"review":"Thanks, I hate it"}')
    assert response.status_code == 200
    body = response.get_json()
    assert set(body) == {"positive", "negative", "model_version"}
    assert body["positive"] < 0.5 < body["negative"]
    assert body["positive"] + body["negative"] == pytest.approx(1.0)


@pytest.mark.parametrize("path", ["/predict/", "/predict"])
@pytest.mark.parametrize("content_type", ["application/json", "text/plain", None])
def test_predict_accepts_json_whatever_the_content_type(client, path, content_type):
    kwargs = {"content_type": content_type} if content_type else {}
    response = client.post(path, data='{"review": "I love this phone"}', **kwargs)
    assert response.status_code == 200
    assert response.get_json()["positive"] > 0.5


def test_batch_scores_each_review_in_order(client):
    reviews = ["I love it, wonderful", "terrible, I hate it", "great food"]
    response = client.post(
        "/v1/predict", json={"reviews": reviews}, headers={"X-Request-ID": "req-42"}
    )
    assert response.status_code == 200
    body = response.get_json()
    assert [p["label"] for p in body["predictions"]] == ["positive", "negative", "positive"]
    assert body["request_id"] == "req-42"
    single = curl_post(client, json.dumps({"review": reviews[1]})).get_json()
    assert body["predictions"][1]["positive"] == single["positive"]
    assert body["model_version"] == single["model_version"]


REVIEWS = ["great", "awful", "ok", "I love it", "never again, it broke"]


def offline_scores(bundles_dir, reviews):
    """P(positive) straight from the bundle's scikit-learn pipeline, not through the API."""
    bundle = ModelFolder(bundles_dir).load(engine="scikit-learn")
    column = list(bundle.model.classes_).index(1)
    return bundle.metadata, bundle.model.predict_proba(reviews)[:, column].tolist()


def test_scores_are_the_model_own_and_labels_follow_its_threshold(client, trained_registry):
    metadata, expected = offline_scores(trained_registry, REVIEWS)
    body = client.post("/v1/predict", json={"reviews": REVIEWS}).get_json()
    assert [p["positive"] for p in body["predictions"]] == pytest.approx(expected, abs=1e-12)
    assert [p["label"] for p in body["predictions"]] == [
        "positive" if score >= metadata.threshold else "negative" for score in expected
    ]
    for prediction in body["predictions"]:
        assert prediction["negative"] == pytest.approx(1.0 - prediction["positive"], abs=1e-15)


def test_a_bundle_with_another_threshold_labels_by_that_threshold(tmp_path):
    """Not a 0.5 written into the service: a model published with threshold 0.99 calls
    almost everything negative."""
    bundles_dir = tmp_path / "strict"
    train_fixture_model(bundles_dir, **{"training.threshold": 0.99})
    metadata, scores = offline_scores(bundles_dir, REVIEWS)
    assert metadata.threshold == 0.99
    assert any(0.5 <= score < 0.99 for score in scores), scores  # a case that tells them apart
    client = create_app(make_settings("test", **{"model.bundles_dir": bundles_dir})).test_client()
    body = client.post("/v1/predict", json={"reviews": REVIEWS}).get_json()
    assert [p["label"] for p in body["predictions"]] == [
        "positive" if score >= 0.99 else "negative" for score in scores
    ]


NESTED = "[" * 30_000 + "]" * 30_000  # deep, yet under the body limit


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        (b"{not json", 400, "invalid_json"),
        (b"", 400, "invalid_json"),
        (b'{"review": "caf\xe9"}', 400, "invalid_json"),
        (b'{"review": NaN}', 400, "invalid_json"),
        (b'{"review": 1' + b"0" * 5000 + b"}", 400, "invalid_json"),
        (NESTED.encode(), 400, "invalid_json"),
        (b'["review"]', 400, "invalid_request"),
        (b'"review"', 400, "invalid_request"),
        (b"{}", 400, "invalid_request"),
        (b'{"review": null}', 400, "invalid_request"),
        (b'{"review": 5}', 400, "invalid_request"),
        (b'{"review": 1e999}', 400, "invalid_request"),
        (b'{"review": true}', 400, "invalid_request"),
        (b'{"review": {"text": "x"}}', 400, "invalid_request"),
        (b'{"review": ["x"]}', 400, "invalid_request"),
        (b'{"review": "ok", "stars": 5}', 400, "invalid_request"),
        (b'{"review": ""}', 422, "empty_review"),
        (b'{"review": " \\n\\t "}', 422, "empty_review"),
        (b'{"review": "a\\u0000b"}', 422, "invalid_text"),
        (b'{"review": "\\ud800"}', 422, "invalid_text"),
    ],
)
def test_bad_single_requests_get_a_json_4xx(client, body, status, code):
    response = curl_post(client, body)
    assert response.status_code == status, response.get_json()
    error = response.get_json()["error"]
    assert error["code"] == code
    assert error["message"]


def test_wrong_field_types_say_which_field(client):
    error = client.post("/predict/", json={"review": 5}).get_json()["error"]
    assert error["details"][0]["field"] == "review"
    assert "review" in error["message"]


def test_unknown_path_and_wrong_method_are_json(client):
    missing = client.get("/nope")
    assert missing.status_code == 404
    assert missing.get_json()["error"]["code"] == "not_found"
    wrong = client.get("/predict/")
    assert wrong.status_code == 405
    assert wrong.get_json()["error"]["code"] == "method_not_allowed"
    assert "POST" in wrong.headers["Allow"]
    assert client.delete("/v1/predict").status_code == 405


def test_health_ready_and_model_info(client, settings):
    assert client.get("/healthz").get_json() == {"status": "ok"}
    ready = client.get("/readyz").get_json()
    info = client.get("/v1/model").get_json()
    assert ready == {"status": "ready", "model_version": info["model"]["version"]}
    assert len(info["model"]["sha256"]) == 64
    assert info["model"]["scorer"] == "compiled"
    assert info["model"]["metrics"]["roc_auc"] > 0.5
    assert info["model"]["dataset"]["rows"] == 72
    assert info["service"] == {
        "environment": "test",
        "version": version("sentiment-service"),
        "git_commit": settings.build.git_commit,
        "build_id": settings.build.build_id,
    }


def test_metrics_count_requests_and_predictions(client):
    client.post("/v1/predict", json={"reviews": ["I love it", "I hate it", "I hate this"]})
    client.post("/predict/", json={"review": ""})
    text = client.get("/metrics").get_data(as_text=True)
    assert 'sentiment_predictions_total{label="negative"} 2.0' in text
    assert 'sentiment_predictions_total{label="positive"} 1.0' in text
    assert (
        'sentiment_http_requests_total{method="POST",route="/v1/predict",status="200"} 1.0' in text
    )
    assert 'sentiment_http_requests_total{method="POST",route="/predict/",status="422"} 1.0' in text
    assert (
        'sentiment_http_request_duration_seconds_count{method="POST",route="/v1/predict"}' in text
    )
    assert "sentiment_model_ready 1.0" in text
    assert 'sentiment_model_info{sha256="' in text


def test_unmatched_paths_share_one_metrics_label(client):
    for path in ("/a", "/b", "/c"):
        client.get(path)
    text = client.get("/metrics").get_data(as_text=True)
    assert 'route="unmatched",status="404"} 3.0' in text
    assert 'route="/a"' not in text


def test_label_values_stay_few_whatever_clients_send(client, capsys):
    """A client choosing methods and paths creates no new series: 300 requests with 300
    made-up methods and paths leave one method label, "other", and one route label."""
    for n in range(300):
        client.open(f"/made-up/{n}", method=f"X{n}METHOD")
    for n in range(20):
        client.open("/v1/predict", method=f"Z{n}")
    text = client.get("/metrics").get_data(as_text=True)
    series = [
        line for line in text.splitlines() if line.startswith("sentiment_http_requests_total")
    ]
    methods = set(re.findall(r'method="([^"]*)"', "\n".join(series)))
    routes = set(re.findall(r'route="([^"]*)"', "\n".join(series)))
    assert methods <= {"GET", "POST", "other"}
    assert "other" in methods
    known = {rule.rule for rule in client.application.url_map.iter_rules()}
    assert routes <= {"unmatched", *known, *ROUTES.values()}
    refused = 'sentiment_http_requests_total{method="other",route="/v1/predict",status="405"}'
    assert f"{refused} 20.0" in text
    logged = [
        json.loads(line) for line in capsys.readouterr().err.splitlines() if '"route"' in line
    ]
    assert {entry["method"] for entry in logged} <= {"GET", "other"}


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/healthz"), ("GET", "/v1/model"), ("POST", "/v1/predict"), ("GET", "/nowhere"),
     ("GET", "/metrics"), ("DELETE", "/v1/predict")],
)  # fmt: skip
def test_every_answer_is_neither_sniffed_nor_cached(client, method, path):
    response = client.open(path, method=method, json={"reviews": ["good"]})
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Cache-Control"] == "no-store"


def test_request_ids_are_propagated_or_generated(client):
    assert client.get("/healthz", headers={"X-Request-ID": "abc-123"}).headers["X-Request-ID"] == (
        "abc-123"
    )
    generated = client.get("/healthz").headers["X-Request-ID"]
    assert len(generated) == 32
    hostile = client.get("/healthz", headers={"X-Request-ID": "x" * 500})
    assert hostile.headers["X-Request-ID"] != "x" * 500


@pytest.fixture
def not_ready_client(registry_copy, tmp_path):
    def build(damage):
        damage(registry_copy)
        settings = make_settings("test", **{"model.bundles_dir": registry_copy.root})
        return create_app(settings).test_client()

    return build


def _tamper(registry):
    with open(registry.path_of(registry.current_version()) / MODEL_FILE, "ab") as handle:
        handle.write(b"tampered")


def _remove_current(registry):
    registry.current_file.unlink()


def _skew_compiled(registry):
    """A compiled scorer off by 1e-9, its sha256 recorded anew: only the samples tell."""
    bundle_dir = registry.path_of(registry.current_version())
    compiled = json.loads((bundle_dir / "scorer.json").read_text())
    compiled["classifier"]["intercept"] += 1e-9
    data = json.dumps(compiled).encode()
    (bundle_dir / "scorer.json").write_bytes(data)
    metadata = json.loads((bundle_dir / "metadata.json").read_text())
    metadata["compiled"]["sha256"] = hashlib.sha256(data).hexdigest()
    (bundle_dir / "metadata.json").write_text(json.dumps(metadata))


@pytest.mark.parametrize(
    ("damage", "reason", "told"),
    [
        (_tamper, "sha256", "the model bundle failed verification"),
        (_remove_current, "no current model", "no model bundle is available"),
        (_skew_compiled, "another score than scikit-learn gave at publish time",
         "the model bundle failed verification"),
    ],
)  # fmt: skip
def test_a_bad_bundle_keeps_the_service_alive_but_not_ready(
    not_ready_client, damage, reason, told, capsys
):
    client = not_ready_client(damage)
    logged = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    errors = [entry["message"] for entry in logged if entry["level"] == "ERROR"]
    assert len(errors) == 1
    assert "stays not ready" in errors[0]
    assert reason in errors[0]  # the details go to the log
    assert client.get("/healthz").status_code == 200
    ready = client.get("/readyz")
    assert ready.status_code == 503
    assert ready.get_json()["error"] == {
        "code": "model_not_ready",
        "message": f"model is not loaded: {told} (the service log says more)",
    }  # no path, no digest, no internals
    for response in (
        client.post("/predict/", json={"review": "fine"}),
        client.post("/v1/predict", json={"reviews": ["fine"]}),
        client.get("/v1/model"),
    ):
        assert response.status_code == 503
        assert response.get_json()["error"]["code"] == "model_not_ready"
    assert "sentiment_model_ready 0.0" in client.get("/metrics").get_data(as_text=True)


def test_the_model_is_loaded_once_not_per_request(trained_registry, monkeypatch):
    from sentiment.model import folder as folder_module
    from tests.conftest import make_settings

    loads = []
    real_read = folder_module.read_bundle
    monkeypatch.setattr(folder_module, "read_bundle", lambda *a: loads.append(a) or real_read(*a))
    client = create_app(
        make_settings("test", **{"model.bundles_dir": trained_registry})
    ).test_client()
    for _ in range(5):
        assert client.post("/predict/", json={"review": "fine"}).status_code == 200
    assert len(loads) == 1


@pytest.mark.parametrize("environment", ["dev", "test", "stage"])
def test_the_try_it_page_is_served_where_config_turns_it_on(trained_registry, environment):
    settings = make_settings(environment, **{"model.bundles_dir": trained_registry})
    client = create_app(settings).test_client()
    page = client.get("/")
    assert page.status_code == 200
    assert page.mimetype == "text/html"
    assert f'data-max-chars="{settings.service.max_review_chars}"' in page.get_data(as_text=True)
    policy = page.headers["Content-Security-Policy"]
    assert "default-src 'none'" in policy
    assert "script-src 'self'" in policy  # no inline script, no CDN
    assert page.headers["X-Frame-Options"] == "DENY"
    for asset in ("/static/try-it.js", "/static/try-it.css"):
        assert client.get(asset).status_code == 200


def test_prod_has_no_page_and_no_assets(trained_registry, tmp_path):
    key, hashed = new_key("acme", datetime.now(UTC))
    (tmp_path / "hashes").write_text(hashed.line())
    settings = make_settings(
        "prod",
        **{
            "model.bundles_dir": trained_registry,
            "auth.key_hashes_file": tmp_path / "hashes",
        },
    )
    client = create_app(settings).test_client()
    for path in ("/", "/static/try-it.js"):
        # An unknown path asks for a key first: it says nothing to those without one.
        assert client.get(path).status_code == 401
        response = client.get(path, headers={"X-API-Key": key})
        assert response.status_code == 404
        assert response.get_json()["error"]["code"] == "not_found"


def test_readiness_fails_while_draining_and_predictions_go_on(client, tmp_path, monkeypatch):
    """gunicorn_conf marks a SIGTERM'd server as draining: balancers see it not ready at
    once, while what they still send is answered."""
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    assert client.get("/readyz").status_code == 200
    (tmp_path / "draining").touch()
    ready = client.get("/readyz")
    assert ready.status_code == 503
    assert ready.get_json()["error"] == {
        "code": "draining",
        "message": "the service is shutting down",
    }
    assert client.post("/predict/", json={"review": "fine"}).status_code == 200
    assert client.get("/healthz").status_code == 200
