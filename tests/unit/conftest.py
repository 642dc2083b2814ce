"""Service fixture chain: settings -> app -> client, every response checked against OpenAPI."""

import shutil
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from openapi_core import OpenAPI
from openapi_core.testing import MockRequest, MockResponse

from sentiment.serving.api_keys import new_key
from sentiment.serving.app import create_app
from sentiment.serving.request_log import ACCESS_LINES
from sentiment.serving.settings import Settings
from tests.conftest import make_settings, repository_config_only


def pytest_configure(config: pytest.Config) -> None:
    """hypothesis keeps its caches and examples in ./.hypothesis unless told otherwise, from
    the moment a test module using it is imported: here, a directory of this run's own.
    (The integration tests, beside which these run, fail a test when the checkout grows.)"""
    from hypothesis.configuration import set_hypothesis_home_dir

    config.hypothesis_home = Path(tempfile.mkdtemp(prefix="hypothesis-"))  # type: ignore[attr-defined]
    set_hypothesis_home_dir(config.hypothesis_home)  # type: ignore[attr-defined]


def pytest_unconfigure(config: pytest.Config) -> None:
    home = getattr(config, "hypothesis_home", None)
    if home is not None:
        shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(scope="package", autouse=True)
def _repository_config_only() -> Iterator[None]:
    with repository_config_only():
        yield


@pytest.fixture(autouse=True)
def _own_access_lines() -> Iterator[None]:
    """A test's access lines are written before the next test captures stderr."""
    yield
    ACCESS_LINES.flush()


@pytest.fixture
def service_overrides() -> dict:
    """Tests override single keys by redefining this fixture or updating the dict."""
    return {}


@pytest.fixture
def keys(tmp_path: Path) -> dict[str, str]:
    """Keys of a client (acme), the gates (gate) and the metrics scraper (prometheus, an
    operator key); their hashes in tmp_path/hashes."""
    made = {key_id: new_key(key_id, datetime(2026, 11, 28, 12, tzinfo=UTC))
            for key_id in ("acme", "gate", "prometheus")}  # fmt: skip
    (tmp_path / "hashes").write_text("\n".join(h.line() for _, h in made.values()) + "\n")
    return {key_id: key for key_id, (key, _) in made.items()}


@pytest.fixture
def settings(trained_registry: Path, service_overrides: dict, tmp_path: Path) -> Settings:
    overrides = {"model.bundles_dir": trained_registry,
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
