"""The local OCI registry the delivery tooling starts (Debian's docker-registry)."""

import shutil
import socket
from pathlib import Path

import pytest
import requests

from sentiment_release.delivery.errors import DeliveryError
from sentiment_release.delivery.registry_server import BINARIES, LocalRegistry

pytestmark = pytest.mark.integration


def free_address() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{sock.getsockname()[1]}"


@pytest.fixture(autouse=True)
def not_against_a_deployed_service(request: pytest.FixtureRequest) -> None:
    if request.config.getoption("--base-url"):
        pytest.skip("tests the delivery tooling, not the service at --base-url")


@pytest.fixture
def registry_binary() -> None:
    if not any(map(shutil.which, BINARIES)):
        pytest.skip("docker-registry is not installed (apt-get install docker-registry)")


@pytest.mark.usefixtures("registry_binary")
def test_starts_once_answers_the_distribution_api_and_stops(tmp_path: Path) -> None:
    registry = LocalRegistry(free_address(), tmp_path)
    assert not registry.is_up()
    try:
        assert registry.ensure_running().startswith("started registry")
        response = requests.get(registry.url, timeout=5)
        assert response.status_code == 200
        assert response.headers["Docker-Distribution-Api-Version"] == "registry/2.0"
        again = registry.ensure_running()  # not a second one
        assert again.startswith("registry answers")
        assert f"pid {registry.pid()}" in again
        # Another checkout sees a registry whose images live elsewhere, and is told so.
        other = LocalRegistry(registry.address, tmp_path / "other-checkout")
        assert "not started from this checkout" in other.ensure_running()
        assert other.stop() is False
        assert registry.is_up()
    finally:
        assert registry.stop() is True
    assert registry.stop() is False


def test_something_else_on_the_port_is_not_a_registry(tmp_path: Path) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        address = f"127.0.0.1:{squatter.getsockname()[1]}"
        assert not LocalRegistry(address, tmp_path).is_up()


def test_a_remote_registry_is_never_started(tmp_path: Path) -> None:
    with pytest.raises(DeliveryError, match=r"can only be started on 127\.0\.0\.1"):
        LocalRegistry("registry.invalid:5000", tmp_path).ensure_running()
