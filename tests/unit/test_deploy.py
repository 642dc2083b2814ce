"""Deploy's decisions, against a stand-in engine: what it refuses and what it leaves running."""

import json
import socket
from pathlib import Path

import pytest

from delivery.config import DeliverySettings, load_delivery_settings
from delivery.deploy import config_sha256, deploy
from delivery.errors import ImageNotFoundError, NotReadyError, PortInUseError
from delivery.records import Records
from tests.conftest import CONFIG_DIR
from tests.unit.fake_engine import fake_engine

IMAGE = "127.0.0.1:5000/sentiment-api@sha256:" + "d4" * 32
RUNNING = json.dumps([{"State": {"Status": "running"}, "Config": {"Labels": {}}}])
EXITED = json.dumps([{"State": {"Status": "exited"}, "Config": {"Labels": {}}}])


@pytest.fixture
def listener() -> socket.socket:
    """A port some other program holds."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock


def settings_with_test_port(monkeypatch: pytest.MonkeyPatch, port: int) -> DeliverySettings:
    monkeypatch.setenv("DELIVERY_DEPLOY__PORTS", json.dumps({"test": port}))
    monkeypatch.setenv("DELIVERY_DEPLOY__READY_TIMEOUT_SECONDS", "5")
    return load_delivery_settings(CONFIG_DIR)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_a_port_in_use_is_refused_before_anything_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, listener: socket.socket
) -> None:
    port = listener.getsockname()[1]
    delivery = settings_with_test_port(monkeypatch, port)
    engine, calls = fake_engine(tmp_path, "podman", {"container": (125, "no such container")})
    with pytest.raises(PortInUseError, match=f"port {port} .*test.* in use"):
        deploy(engine, delivery, Records(tmp_path / "state"), "test", IMAGE, CONFIG_DIR)
    assert not any(line.startswith("run") for line in calls.read_text().splitlines())


def test_an_unknown_digest_leaves_the_running_container_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    delivery = settings_with_test_port(monkeypatch, free_port())
    engine, calls = fake_engine(
        tmp_path, "podman", {"pull": (125, "manifest unknown"), "container": (0, RUNNING)}
    )
    records = Records(tmp_path / "state")
    records.save_deployment("test", {"environment": "test", "image": "the old one"})
    with pytest.raises(ImageNotFoundError, match="not in the registry"):
        deploy(engine, delivery, records, "test", IMAGE, CONFIG_DIR)
    assert calls.read_text().splitlines() == [f"pull --quiet --tls-verify=true {IMAGE}"]
    assert records.deployment("test") == {"environment": "test", "image": "the old one"}


def test_a_container_that_exits_fails_with_its_logs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    delivery = settings_with_test_port(monkeypatch, free_port())
    engine, calls = fake_engine(
        tmp_path,
        "docker",
        {"container": (0, EXITED), "logs": (0, "Traceback: config/test.yaml is not valid YAML")},
    )
    records = Records(tmp_path / "state")
    with pytest.raises(NotReadyError) as raised:
        deploy(engine, delivery, records, "test", IMAGE, CONFIG_DIR)
    message = str(raised.value)
    assert "the container is exited" in message
    assert "config/test.yaml is not valid YAML" in message
    run = next(line for line in calls.read_text().splitlines() if line.startswith("run"))
    for option in ("--read-only", "--env APP_ENV=test", "--cap-drop ALL", "--init",
                   f"{CONFIG_DIR.resolve()}:/app/config:ro"):  # fmt: skip
        assert option in run
    assert "--read-only-tmpfs" not in run  # a podman-only flag
    assert records.deployment("test") is None


def test_the_config_hash_covers_base_and_the_environment_only(tmp_path: Path) -> None:
    for name in ("base.yaml", "test.yaml", "stage.yaml"):
        (tmp_path / name).write_text(f"# {name}\n")
    before = config_sha256(tmp_path, "test")
    (tmp_path / "stage.yaml").write_text("changed\n")
    assert config_sha256(tmp_path, "test") == before
    (tmp_path / "base.yaml").write_text("changed\n")
    assert config_sha256(tmp_path, "test") != before
