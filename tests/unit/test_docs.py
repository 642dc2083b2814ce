"""/docs: Swagger UI's page and files from the image, open like /openapi.json, off where
config says; and the document's examples are what the service really answers."""

import json

import pytest

from sentiment.serving.app import create_app
from tests.conftest import make_settings


@pytest.fixture
def service_overrides(tmp_path) -> dict:
    (tmp_path / "hashes").write_text("")
    return {"auth.required": True, "auth.key_hashes_file": tmp_path / "hashes"}


def test_the_page_and_its_files_need_no_key_and_nothing_from_elsewhere(client):
    for path in ("/docs", "/docs/"):
        page = client.get(path)
        assert page.status_code == 200
        policy = page.headers["Content-Security-Policy"]
        assert "script-src 'self';" in policy
        assert "connect-src 'self';" in policy
        html = page.get_data(as_text=True)
        assert 'data-spec="/openapi.json"' in html
        assert "http" not in html  # every file from this origin
    for asset in ("/docs/ui/swagger-ui-bundle.js", "/docs/ui/swagger-ui.css", "/docs/docs.js",
                  "/docs/ui/favicon-32x32.png"):  # fmt: skip
        answer = client.get(asset)
        assert answer.status_code == 200
        assert answer.headers["Content-Security-Policy"] == page.headers["Content-Security-Policy"]
    script = client.get("/docs/docs.js").get_data(as_text=True)
    assert "validatorUrl: null" in script  # no badge fetched from swagger.io
    assert "queryConfigEnabled: false" in script  # no spec URL taken from the query string


@pytest.mark.parametrize("path", [
    "/docs/ui/../../app.py", "/docs/ui/%2e%2e/__init__.py", "/docs/ui/nope.js", "/docs/other",
    "/docs/ui/oauth2-redirect.html", "/docs/ui/swagger-ui.js", "/docs/ui/index.css",
])  # fmt: skip
def test_nothing_else_is_served_under_docs(client, path):
    response = client.get(path)
    assert response.status_code >= 400
    assert "error" in response.get_json()


def test_off_where_config_says(trained_registry, tmp_path):
    settings = make_settings("dev", **{"model.bundles_dir": trained_registry,
                                       "service.api_docs": False})  # fmt: skip
    client = create_app(settings).test_client()
    assert client.get("/docs/").status_code == 404
    assert client.get("/docs/ui/swagger-ui.css").status_code == 404


def test_the_examples_are_what_the_service_answers(trained_registry, tmp_path):
    settings = make_settings("dev", **{"model.bundles_dir": trained_registry})
    client = create_app(settings).test_client()
    document = client.get("/openapi.json").get_json()
    for path in ("/predict/", "/v1/predict"):
        operation = document["paths"][path]["post"]
        example = operation["requestBody"]["content"]["application/json"]["example"]
        answer = client.post(path, json=example)
        assert answer.status_code == 200
        shown = operation["responses"]["200"]["content"]["application/json"]["example"]
        assert answer.get_json().keys() == shown.keys()
    # Each error the service sends here is one of its status's examples, message and all.
    responses = document["paths"]["/v1/predict"]["post"]["responses"]
    limits = settings.service
    for body, status in (
        (b"{", 400), (b'{"reviews": ["ok"], "extra": 1}', 400),
        (b'{"reviews": ["   "]}', 422), (b'{"reviews": []}', 422),
        (json.dumps({"reviews": ["x"] * (limits.max_batch_size + 1)}).encode(), 422),
        (json.dumps({"reviews": ["x" * (limits.max_review_chars + 1)]}).encode(), 422),
        (b"[" + b" " * limits.max_body_bytes + b"]", 413),
    ):  # fmt: skip
        answer = client.post("/v1/predict", data=body, content_type="application/json")
        assert answer.status_code == status
        error = answer.get_json()["error"]
        examples = responses[str(status)]["content"]["application/json"]["examples"]
        assert error["code"] in examples, (status, error)
        if error["code"] in ("payload_too_large", "empty_batch", "batch_too_large"):
            assert examples[error["code"]]["value"]["error"] == error
