"""Build and deployment records, image references and the delivery config."""

import json
import stat
from pathlib import Path

import pytest

from sentiment_release.delivery.config import load_delivery_settings
from sentiment_release.delivery.errors import DeliveryError
from sentiment_release.delivery.records import BuildRecord, DeploymentRecord, Records
from sentiment_release.delivery.references import pinned_reference
from sentiment_release.support.errors import ReleaseError
from sentiment_release.support.records import RecordError
from tests.conftest import CONFIG_DIR

DIGEST = "sha256:" + "0f" * 32


def build_record(digest: str) -> BuildRecord:
    return BuildRecord(
        digest=digest, image=f"r/n@{digest}", tag="r/n:abc", size_bytes=1, size_mb=0.0,
        size_budget_mb=300, labels={}, model={"version": "v", "sha256": "s"},
        git_commit="c" * 40, git_dirty=False, source_tree="t" * 40, version="0.2.0",
        base_image="b", engine="podman", built_at="2026-11-27T10:00:00.000001Z",
        seconds={"image_build": 1, "push": 1, "total": 2},
    )  # fmt: skip


def deployment(environment: str = "test") -> DeploymentRecord:
    return DeploymentRecord(
        environment=environment, image=f"r/n@{DIGEST}", digest=DIGEST, target="local",
        url="http://127.0.0.1:8002", config_sha256="c" * 64, model_version="m",
        deployed_at="2026-11-27T10:00:00Z", seconds_to_ready=1.5, replaced_previous=False,
    )  # fmt: skip


def test_the_latest_build_is_the_last_one_saved(tmp_path: Path) -> None:
    records = Records(tmp_path)
    assert records.latest_build() is None
    first, second = "sha256:" + "1" * 64, "sha256:" + "2" * 64
    records.save_build(build_record(first))
    records.save_build(build_record(second))
    assert records.latest_build() == build_record(second)
    assert records.build(first) == build_record(first)


def test_records_round_trip_with_one_timestamp_format(tmp_path: Path) -> None:
    records = Records(tmp_path)
    path = records.save_deployment(deployment())
    written = json.loads(path.read_text())
    assert written["deployed_at"] == "2026-11-27T10:00:00.000000Z"
    assert written["schema_version"] == 1
    assert records.deployment("test") == deployment()
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert sorted(p.name for p in path.parent.iterdir()) == ["test.json"]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", r"stage\.json is damaged: not JSON"),
        ("[1, 2]", r"stage\.json is damaged: not a JSON object"),
        ('{"environment": "stage"}', r"stage\.json is not a valid DeploymentRecord: image: Field"),
        ('{"schema_version": 9}', r"stage\.json has schema version 9"),
    ],
)
def test_a_damaged_record_is_an_error_naming_the_file(
    tmp_path: Path, content: str, message: str
) -> None:
    records = Records(tmp_path)
    path = records.save_deployment(deployment("stage"))
    path.write_text(content)
    with pytest.raises(RecordError, match=message):
        records.deployment("stage")


def test_a_build_is_looked_up_by_digest_only(tmp_path: Path) -> None:
    with pytest.raises(DeliveryError, match="is not a digest"):
        Records(tmp_path).build("../../etc/passwd")


def test_forgetting_a_deployment_twice_is_fine(tmp_path: Path) -> None:
    records = Records(tmp_path)
    records.save_deployment(deployment("dev"))
    records.forget_deployment("dev")
    records.forget_deployment("dev")
    assert records.deployment("dev") is None


def test_a_bare_digest_is_pinned_to_the_configured_registry() -> None:
    name = load_delivery_settings(CONFIG_DIR).registry.image_name
    assert pinned_reference(DIGEST, name) == f"127.0.0.1:5000/sentiment-api@{DIGEST}"
    assert pinned_reference(f"ghcr.io/acme/api@{DIGEST}", name) == f"ghcr.io/acme/api@{DIGEST}"


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
        pinned_reference(image, registry.image_name)


def test_the_delivery_config_of_the_repository_is_valid() -> None:
    delivery = load_delivery_settings(CONFIG_DIR)
    assert delivery.registry.image_name == "127.0.0.1:5000/sentiment-api"
    assert delivery.deploy.target == "local"


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
        ("DELIVERY_DEPLOY__TARGET", "swarm", "deploy.target"),
        ("DELIVERY_REGISTRY__REPOSITORY", "Sentiment API", "registry.repository"),
    ],
)
def test_a_bad_delivery_setting_is_named(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, message: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ReleaseError, match=message):
        load_delivery_settings(CONFIG_DIR)
