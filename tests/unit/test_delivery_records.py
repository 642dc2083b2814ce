"""Build and deployment records, image references and the delivery config."""

import json
import stat
from pathlib import Path

import pytest

from delivery.config import load_delivery_settings
from delivery.errors import DeliveryError
from delivery.records import Records
from delivery.references import pinned_reference
from tests.conftest import CONFIG_DIR

DIGEST = "sha256:" + "0f" * 32


def build_record(digest: str) -> dict:
    return {"digest": digest, "image": f"r/n@{digest}", "size_bytes": 1}


def test_the_latest_build_is_the_last_one_saved(tmp_path: Path) -> None:
    records = Records(tmp_path)
    assert records.latest_build() is None
    first, second = "sha256:" + "1" * 64, "sha256:" + "2" * 64
    records.save_build(build_record(first))
    records.save_build(build_record(second))
    assert records.latest_build() == build_record(second)
    assert records.build(first) == build_record(first)


def test_records_are_json_readable_by_others_and_leave_no_temp_files(tmp_path: Path) -> None:
    records = Records(tmp_path)
    path = records.save_deployment("test", {"environment": "test", "image": "x"})
    assert json.loads(path.read_text()) == {"environment": "test", "image": "x"}
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert sorted(p.name for p in path.parent.iterdir()) == ["test.json"]


def test_a_damaged_record_is_an_error_naming_the_file(tmp_path: Path) -> None:
    records = Records(tmp_path)
    path = records.save_deployment("stage", {"environment": "stage"})
    path.write_text("{not json")
    with pytest.raises(DeliveryError, match=r"stage\.json is damaged"):
        records.deployment("stage")


def test_forgetting_a_deployment_twice_is_fine(tmp_path: Path) -> None:
    records = Records(tmp_path)
    records.save_deployment("dev", {"environment": "dev"})
    records.forget_deployment("dev")
    records.forget_deployment("dev")
    assert records.deployment("dev") is None


def test_a_bare_digest_is_pinned_to_the_configured_registry() -> None:
    registry = load_delivery_settings(CONFIG_DIR).registry
    assert pinned_reference(DIGEST, registry) == f"127.0.0.1:5000/sentiment-api@{DIGEST}"
    assert pinned_reference(f"ghcr.io/acme/api@{DIGEST}", registry) == f"ghcr.io/acme/api@{DIGEST}"


@pytest.mark.parametrize(
    "image",
    [
        "127.0.0.1:5000/sentiment-api:latest",
        "sentiment-api",
        "sha256:" + "0F" * 32,
        "sha256:" + "0f" * 31,
        f"127.0.0.1:5000/sentiment-api:v1@{DIGEST} ; rm -rf /",
    ],
)
def test_anything_but_a_digest_is_refused(image: str) -> None:
    registry = load_delivery_settings(CONFIG_DIR).registry
    with pytest.raises(DeliveryError, match="deployed by digest, never by tag"):
        pinned_reference(image, registry)


def test_the_delivery_config_of_the_repository_is_valid() -> None:
    delivery = load_delivery_settings(CONFIG_DIR)
    assert set(delivery.deploy.ports) == {"dev", "test", "stage", "prod"}
    assert delivery.registry.image_name == "127.0.0.1:5000/sentiment-api"


def test_variables_override_the_delivery_file(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DELIVERY_ENGINE", "docker")
    monkeypatch.setenv("DELIVERY_REGISTRY__ADDRESS", "ghcr.io/acme")
    delivery = load_delivery_settings(CONFIG_DIR)
    assert delivery.engine == "docker"
    assert delivery.registry.host == "ghcr.io"
    assert delivery.registry.image_name == "ghcr.io/acme/sentiment-api"


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("DELIVERY_ENGINE", "lxc", "engine"),
        ("DELIVERY_DEPLOY__PORTS", '{"dev": 8001, "test": 8001, "stage": 8003, "prod": 8004}',
         "two environments share a port"),
        ("DELIVERY_REGISTRY__REPOSITORY", "Sentiment API", "registry.repository"),
    ],
)  # fmt: skip
def test_a_bad_delivery_setting_is_named(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, message: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(DeliveryError, match=message):
        load_delivery_settings(CONFIG_DIR)


def test_an_environment_without_a_port_is_named(tmp_path: Path) -> None:
    text = (CONFIG_DIR / "delivery.yaml").read_text()
    (tmp_path / "delivery.yaml").write_text(text.replace("    prod: 8004\n", ""))
    with pytest.raises(DeliveryError, match=r"deploy\.ports: no port for prod"):
        load_delivery_settings(tmp_path)
