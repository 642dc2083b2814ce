"""The local target's decisions, against a stand-in engine: what it refuses, what it runs
and what it leaves running."""

import json
import socket
from pathlib import Path

import pytest

from sentiment_release.delivery.api_keys import ApiKeyStore
from sentiment_release.delivery.config import LocalSettings
from sentiment_release.delivery.errors import (
    DeliveryError,
    ImageNotFoundError,
    NotReadyError,
    PortInUseError,
)
from sentiment_release.delivery.local import LocalContainers
from sentiment_release.delivery.records import Records
from sentiment_release.delivery.service_config import config_sha256
from tests.conftest import SERVICE_CONFIG_DIR
from tests.unit.fake_engine import fake_engine
from tests.unit.test_delivery_records import deployment

IMAGE = "127.0.0.1:5000/sentiment-api@sha256:" + "d4" * 32
RUNNING = json.dumps([{"State": {"Status": "running"}, "Config": {"Labels": {}}}])
EXITED = json.dumps([{"State": {"Status": "exited"}, "Config": {"Labels": {}}}])
SETTINGS = LocalSettings(container_prefix="sentiment-", ready_timeout_seconds=5, log_tail_lines=5)


@pytest.fixture
def listener() -> socket.socket:
    """A port some other program holds."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def target(engine, records, port: int, api_keys: ApiKeyStore | None = None) -> LocalContainers:
    api_keys = api_keys or ApiKeyStore(records.builds.parent / "api-keys")
    ports = {"test": port, "stage": port}
    return LocalContainers(engine, SETTINGS, records, ports, SERVICE_CONFIG_DIR, api_keys,
                           records.builds.parent / "monitoring")  # fmt: skip


def test_an_environment_that_needs_keys_and_has_none_is_refused_before_anything(tmp_path):
    engine, calls = fake_engine(tmp_path, "podman", {"container": (0, RUNNING)})
    with pytest.raises(DeliveryError, match="stage requires API keys and has none here"):
        target(engine, Records(tmp_path / "state"), free_port()).deploy("stage", IMAGE)
    assert not calls.exists()


def test_the_key_hashes_are_mounted_read_only_where_the_service_reads_them(tmp_path):
    engine, calls = fake_engine(tmp_path, "podman", {"container": (0, EXITED)})
    api_keys = ApiKeyStore(tmp_path / "keys")
    api_keys.ensure_gate_key("stage")
    with pytest.raises(NotReadyError):
        target(engine, Records(tmp_path / "state"), free_port(), api_keys).deploy("stage", IMAGE)
    run = next(line for line in calls.read_text().splitlines() if line.startswith("run"))
    hashes = api_keys.hashes_file("stage").resolve()
    assert f"--volume {hashes}:/run/secrets/sentiment-api-keys/hashes:ro" in run
    assert str(api_keys.gate_key_file("stage")) not in run


def test_the_monitoring_volume_is_the_environments_own_and_the_image_is_named(tmp_path):
    engine, calls = fake_engine(tmp_path, "podman", {"container": (0, EXITED)})
    with pytest.raises(NotReadyError):
        target(engine, Records(tmp_path / "state"), free_port()).deploy("test", IMAGE)
    run = next(line for line in calls.read_text().splitlines() if line.startswith("run"))
    volume = (tmp_path / "state" / "monitoring" / "test").resolve()
    assert volume.is_dir()
    assert f"--volume {volume}:/var/lib/sentiment:U" in run  # owned by the image's user
    assert f"--env SENTIMENT_BUILD__IMAGE={IMAGE}" in run


def test_a_port_in_use_is_refused_before_anything_runs(tmp_path: Path, listener) -> None:
    port = listener.getsockname()[1]
    engine, calls = fake_engine(tmp_path, "podman", {"container": (125, "no such container")})
    with pytest.raises(PortInUseError, match=f"port {port} .*test.* in use"):
        target(engine, Records(tmp_path / "state"), port).deploy("test", IMAGE)
    assert not any(line.startswith("run") for line in calls.read_text().splitlines())


def test_an_unknown_digest_leaves_the_running_container_alone(tmp_path: Path) -> None:
    engine, calls = fake_engine(
        tmp_path, "podman", {"pull": (125, "manifest unknown"), "container": (0, RUNNING)}
    )
    records = Records(tmp_path / "state")
    records.save_deployment(deployment("test"))
    with pytest.raises(ImageNotFoundError, match="not in the registry"):
        target(engine, records, free_port()).deploy("test", IMAGE)
    assert calls.read_text().splitlines() == [f"pull --quiet --tls-verify=true {IMAGE}"]
    assert records.deployment("test") == deployment("test")


def test_a_container_that_exits_fails_with_its_logs(tmp_path: Path) -> None:
    engine, calls = fake_engine(
        tmp_path,
        "docker",
        {"container": (0, EXITED), "logs": (0, "Traceback: config/test.yaml is not valid YAML")},
    )
    records = Records(tmp_path / "state")
    with pytest.raises(NotReadyError) as raised:
        target(engine, records, free_port()).deploy("test", IMAGE)
    message = str(raised.value)
    assert "the container is exited" in message
    assert "config/test.yaml is not valid YAML" in message
    run = next(line for line in calls.read_text().splitlines() if line.startswith("run"))
    for option in ("--read-only", "--env APP_ENV=test", "--cap-drop ALL", "--init",
                   f"{SERVICE_CONFIG_DIR.resolve()}:/app/config:ro",
                   f"config-sha256={config_sha256(SERVICE_CONFIG_DIR, 'test')}"):  # fmt: skip
        assert option in run
    assert "--read-only-tmpfs" not in run  # a podman-only flag
    assert records.deployment("test") is None


def test_an_environment_without_a_port_is_named(tmp_path: Path) -> None:
    engine, calls = fake_engine(tmp_path, "podman")
    with pytest.raises(DeliveryError, match="uat has no port"):
        target(engine, Records(tmp_path / "state"), free_port()).deploy("uat", IMAGE)
    assert not calls.exists()


def test_status_reads_the_container_and_asks_the_service(tmp_path: Path) -> None:
    labelled = json.dumps(
        [{"State": {"Status": "running"},
          "Config": {"Labels": {"io.github.sentiment-mlops.image": IMAGE}}}]
    )  # fmt: skip
    engine, _ = fake_engine(tmp_path, "podman", {"container": (0, labelled)})
    found = target(engine, Records(tmp_path), free_port()).status("test")
    assert (found.state, found.image) == ("running", IMAGE)
    assert found.health.startswith("unreachable")  # nothing listens on that port
    gone, _ = fake_engine(tmp_path / "gone", "podman", {"container": (125, "no such container")})
    assert target(gone, Records(tmp_path), free_port()).status("test").state == "not deployed"


def test_the_config_hash_covers_base_and_the_environment_only(tmp_path: Path) -> None:
    for name in ("base.yaml", "test.yaml", "stage.yaml"):
        (tmp_path / name).write_text(f"# {name}\n")
    before = config_sha256(tmp_path, "test")
    (tmp_path / "stage.yaml").write_text("changed\n")
    assert config_sha256(tmp_path, "test") == before
    (tmp_path / "base.yaml").write_text("changed\n")
    assert config_sha256(tmp_path, "test") != before
