"""Service fixture chain: settings -> app -> client, every response checked against OpenAPI."""

from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from openapi_core import OpenAPI
from openapi_core.testing import MockRequest, MockResponse

from service.app import create_app
from service.settings import Settings
from tests.conftest import make_settings, repository_config_only


@pytest.fixture(scope="package", autouse=True)
def _repository_config_only() -> Iterator[None]:
    with repository_config_only():
        yield


@pytest.fixture
def service_overrides() -> dict:
    """Tests override single keys by redefining this fixture or updating the dict."""
    return {}


@pytest.fixture
def settings(trained_registry: Path, service_overrides: dict, tmp_path: Path) -> Settings:
    overrides = {"model.registry_dir": trained_registry,
                 "monitoring.dir": tmp_path / "monitoring", **service_overrides}  # fmt: skip
    return make_settings("test", **overrides)


@pytest.fixture
def app(settings: Settings) -> Flask:
    return create_app(settings)


class SpecCheckedClient(FlaskClient):
    """A test client that fails the test when a response breaks the OpenAPI document.

    404 and 405 answer paths or methods the document does not describe, so only
    documented operations are checked.
    """

    spec: OpenAPI
    documented: dict[str, set[str]]

    def open(self, *args, **kwargs):
        response = super().open(*args, **kwargs)
        request = response.request
        if request.method.lower() in self.documented.get(request.path, ()):
            self.spec.validate_response(
                MockRequest("http://localhost", request.method.lower(), request.path),
                MockResponse(
                    response.get_data(),
                    response.status_code,
                    headers=dict(response.headers),
                    content_type=response.mimetype,
                ),
            )
        return response


@pytest.fixture
def client(app: Flask) -> SpecCheckedClient:
    document = app.test_client().get("/openapi.json").get_json()
    documented = {path: set(methods) for path, methods in document["paths"].items()}
    app.test_client_class = type(
        "Checked",
        (SpecCheckedClient,),
        {"spec": OpenAPI.from_dict(document), "documented": documented},
    )
    return app.test_client()
