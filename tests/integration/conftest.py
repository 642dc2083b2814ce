"""A real gunicorn server per module (or the service at --base-url), reached over HTTP."""

from collections.abc import Iterator

import pytest

from tests.conftest import repository_config_only
from tests.integration.server import Server, running_server


@pytest.fixture(scope="package", autouse=True)
def _repository_config_only() -> Iterator[None]:
    with repository_config_only():
        yield


@pytest.fixture(scope="module")
def base_url(request, trained_registry, tmp_path_factory) -> Iterator[str]:
    given = request.config.getoption("--base-url")
    if given:
        yield given.rstrip("/")
        return
    with running_server(tmp_path_factory.mktemp("server"), trained_registry) as server:
        yield server.base_url


@pytest.fixture
def own_server(request):
    """Starts a private server; skipped when the tests target a deployed service."""
    if request.config.getoption("--base-url"):
        pytest.skip("needs its own server; --base-url points at a deployed one")

    def start(workdir, registry_dir, **options) -> Server:
        context = running_server(workdir, registry_dir, **options)
        request.addfinalizer(lambda: context.__exit__(None, None, None))
        return context.__enter__()

    return start
