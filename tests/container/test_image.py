"""The real image: built once, pushed, pulled by digest, run as test and as stage."""

import json
import shutil
import socket
import subprocess
from pathlib import Path
from typing import Any

import pytest
import requests

from delivery.engine import Engine
from model_registry import ModelRegistry
from tests.conftest import CONFIG_DIR, ROOT
from tests.container.conftest import Delivery

pytestmark = pytest.mark.container


@pytest.fixture(scope="module")
def on_test(delivery: Delivery, built: dict[str, Any]) -> dict[str, Any]:
    delivery.run("deploy", "test")
    return delivery.deployment("test")


@pytest.fixture(scope="module")
def on_stage(delivery: Delivery, built: dict[str, Any]) -> dict[str, Any]:
    delivery.run("deploy", "stage", "--image", built["digest"])
    return delivery.deployment("stage")


def _exec(engine: Engine, container: str, *command: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [engine.binary, "exec", container, *command], capture_output=True, text=True, check=False
    )


def test_the_build_reports_and_records_the_registry_digest(
    built: dict[str, Any], delivery: Delivery, trained_registry: Path
) -> None:
    registry = delivery.env["DELIVERY_REGISTRY__ADDRESS"]
    manifest = requests.head(
        f"http://{registry}/v2/sentiment-api/manifests/{built['digest']}",
        headers={
            "Accept": "application/vnd.docker.distribution.manifest.v2+json, "
            "application/vnd.oci.image.manifest.v1+json"
        },
        timeout=10,
    )
    assert manifest.status_code == 200
    assert manifest.headers["Docker-Content-Digest"] == built["digest"]
    assert built["image"] == f"{registry}/sentiment-api@{built['digest']}"
    assert built["image"] in built["output"]
    assert f"size     {built['size_mb']} MB" in built["output"]
    assert built["size_bytes"] > 50_000_000


def test_the_labels_name_the_commit_and_the_model(
    built: dict[str, Any], trained_registry: Path
) -> None:
    model = ModelRegistry(trained_registry).load().metadata
    labels = built["labels"]
    assert labels["io.github.sentiment-mlops.model.version"] == model.version
    assert labels["io.github.sentiment-mlops.model.sha256"] == model.sha256
    head = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert labels["org.opencontainers.image.revision"].removesuffix("-dirty") == head
    assert labels["org.opencontainers.image.created"] == built["built_at"]
    assert labels["org.opencontainers.image.version"] == built["version"]


def test_the_image_carries_only_what_serving_needs(engine: Engine, built: dict[str, Any]) -> None:
    listing = subprocess.run(
        [engine.binary, "run", "--rm", "--entrypoint", "sh", built["tag"], "-c",
         "ls -1 /app; ls -1 /app/config; ls / | grep -x wheels; command -v gcc cc pip; "
         "ls /opt/venv/lib/python3.11/site-packages/sklearn/tests"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert listing.stdout.split() == [
        "config", "models", "base.yaml", "dev.yaml", "prod.yaml", "stage.yaml", "test.yaml",
    ]  # fmt: skip


def test_the_healthcheck_probes_readiness(
    engine: Engine, built: dict[str, Any], on_test: dict[str, Any], delivery: Delivery
) -> None:
    details = engine.image_inspect(built["tag"])
    # Docker keeps it under Config, Podman at the top level.
    healthcheck = (details.get("Config") or {}).get("Healthcheck") or details.get("Healthcheck")
    assert healthcheck, "the HEALTHCHECK was lost (podman needs --format docker)"
    command = healthcheck["Test"]
    assert command[0] == "CMD"
    assert any("/readyz" in part for part in command)
    assert _exec(engine, delivery.container("test"), *command[1:]).returncode == 0


def test_the_lecture_curl_request_works(on_test: dict[str, Any], delivery: Delivery) -> None:
    curl = shutil.which("curl")
    if curl is None:
        pytest.skip("curl is not installed")
    done = subprocess.run(
        [curl, "-sS", "-X", "POST", f"{delivery.url('test')}/predict/",
         "-d", '{"review":"Thanks, I hate it"}'],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    body = json.loads(done.stdout)
    assert body["negative"] > body["positive"]
    assert abs(body["positive"] + body["negative"] - 1) < 1e-9


def test_it_runs_as_a_non_root_user(
    engine: Engine, on_test: dict[str, Any], delivery: Delivery
) -> None:
    assert _exec(engine, delivery.container("test"), "id", "-u").stdout.strip() == "10001"


def test_the_root_filesystem_is_read_only_and_tmp_is_writable(
    engine: Engine, on_test: dict[str, Any], delivery: Delivery
) -> None:
    name = delivery.container("test")
    for path in ("/app/x", "/opt/venv/x", "/app/config/x"):
        refused = _exec(engine, name, "sh", "-c", f"echo > {path}")
        assert refused.returncode != 0
        assert "Read-only file system" in refused.stderr
    assert _exec(engine, name, "sh", "-c", "echo > /tmp/x").returncode == 0


def test_it_reports_the_model_baked_in(on_test: dict[str, Any], built: dict[str, Any],
                                       delivery: Delivery) -> None:  # fmt: skip
    model = requests.get(f"{delivery.url('test')}/v1/model", timeout=5).json()
    assert model["model"]["version"] == built["model"]["version"] == on_test["model_version"]
    assert model["model"]["sha256"] == built["model"]["sha256"]
    assert model["service"]["environment"] == "test"


def test_test_and_stage_run_the_same_image_with_their_own_config(
    engine: Engine, on_test: dict[str, Any], on_stage: dict[str, Any], delivery: Delivery,
    built: dict[str, Any],
) -> None:  # fmt: skip
    assert on_test["image"] == on_stage["image"] == built["image"]
    image_id = engine.image_inspect(built["image"])["Id"]
    for environment in ("test", "stage"):
        container = engine._inspect("container", delivery.container(environment))
        assert container["Image"].removeprefix("sha256:") == image_id.removeprefix("sha256:")
        info = requests.get(f"{delivery.url(environment)}/v1/model", timeout=5).json()
        assert info["service"]["environment"] == environment
        revision = built["labels"]["org.opencontainers.image.revision"]
        assert info["service"]["git_commit"] == revision


def test_status_shows_what_runs_where(
    on_test: dict[str, Any], on_stage: dict[str, Any], delivery: Delivery, built: dict[str, Any]
) -> None:
    rows = {row["environment"]: row for row in json.loads(delivery.run("status", "--json").stdout)}
    for environment in ("test", "stage"):
        assert rows[environment]["state"] == "running"
        assert rows[environment]["health"] == "ready"
        assert rows[environment]["image"] == built["image"]
        assert rows[environment]["model_version"] == built["model"]["version"]
    assert rows["prod"]["state"] == "not deployed"


def test_render_pins_the_deployed_digest(on_stage: dict[str, Any], delivery: Delivery) -> None:
    rendered = delivery.run("render", "stage").stdout
    assert f"image: {on_stage['image']}" in rendered


def test_redeploying_replaces_the_container(
    engine: Engine, on_test: dict[str, Any], delivery: Delivery
) -> None:
    delivery.run("deploy", "test")
    record = delivery.deployment("test")
    assert record["replaced_previous"] is True
    assert record["seconds_to_ready"] < 60
    listed = subprocess.run(
        [engine.binary, "ps", "--all", "--filter", f"name={delivery.container('test')}",
         "--format", "{{.Names}}"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert listed.stdout.split() == [delivery.container("test")]


def test_an_unknown_digest_is_refused_and_test_keeps_running(
    on_test: dict[str, Any], delivery: Delivery
) -> None:
    done = delivery.run("deploy", "test", "--image", "sha256:" + "0" * 64, check=False)
    assert done.returncode == 1
    assert "is not in the registry" in done.stderr
    assert requests.get(f"{delivery.url('test')}/readyz", timeout=5).status_code == 200


def test_a_port_in_use_is_refused(delivery: Delivery, built: dict[str, Any]) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", delivery.ports["dev"]))
        squatter.listen()
        done = delivery.run("deploy", "dev", check=False)
    assert done.returncode == 1
    assert f"port {delivery.ports['dev']}" in done.stderr
    assert "in use" in done.stderr


def test_a_container_that_never_gets_ready_fails_with_its_logs(
    delivery: Delivery, built: dict[str, Any], tmp_path: Path
) -> None:
    config = tmp_path / "config"
    shutil.copytree(CONFIG_DIR, config)
    (config / "prod.yaml").write_text("model:\n  version: 20990101T000000Z-deadbeef\n")
    done = delivery.run("deploy", "prod", check=False, SENTIMENT_CONFIG_DIR=str(config))
    assert done.returncode == 1
    assert "did not become ready" in done.stderr
    assert "--- its last log lines ---" in done.stderr
    assert "20990101T000000Z-deadbeef" in done.stderr.split("--- its last log lines ---")[1]
    assert not (delivery.state_dir / "deployments" / "prod.json").exists()


def test_sigterm_stops_it_gracefully(
    engine: Engine, delivery: Delivery, built: dict[str, Any]
) -> None:
    delivery.run("deploy", "dev")
    name = delivery.container("dev")
    subprocess.run([engine.binary, "stop", "--time", "30", name], capture_output=True, check=True)
    state = engine._inspect("container", name)["State"]
    logs = engine.logs(name, 50)
    assert state["ExitCode"] == 0, logs
    assert "Shutting down: Master" in logs
    delivery.run("undeploy", "dev")
