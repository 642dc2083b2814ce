"""The real image: what it holds (the serving runtime, nothing of the release tooling),
and how it runs: pulled by digest, as test and as stage, read-only, non-root."""

import json
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest
import requests

from sentiment.model import ModelFolder
from sentiment_release.delivery import labels
from sentiment_release.delivery.champion import read_pin
from sentiment_release.observe.audit_log import AuditLog
from tests.conftest import SERVICE_CONFIG_DIR
from tests.container.conftest import Delivery, head_commit, status

pytestmark = pytest.mark.container
RELEASE_PACKAGES = ("sentiment_release", "sentiment_client")
RELEASE_ONLY_LIBRARIES = ("filelock", "locust", "pytest", "requests", "kubernetes_validate")


@pytest.fixture(scope="module")
def on_test(delivery: Delivery, built):
    delivery.run("deploy", "test")
    return delivery.deployment("test")


@pytest.fixture(scope="module")
def on_stage(delivery: Delivery, built):
    delivery.run("deploy", "stage", "--image", built[0].digest)
    return delivery.deployment("stage")


def _exec(engine, container: str, *command: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [engine.binary, "exec", container, *command], capture_output=True, text=True, check=False
    )


def _in_image(engine, tag: str, script: str) -> str:
    return subprocess.run(
        [engine.binary, "run", "--rm", "--entrypoint", "sh", tag, "-c", script],
        capture_output=True, text=True, check=False,
    ).stdout  # fmt: skip


def test_the_build_reports_and_records_the_registry_digest(built, delivery):
    record, output = built
    registry = delivery.env["DELIVERY_REGISTRY__ADDRESS"]
    manifest = requests.head(
        f"http://{registry}/v2/sentiment-api/manifests/{record.digest}",
        headers={
            "Accept": "application/vnd.docker.distribution.manifest.v2+json, "
            "application/vnd.oci.image.manifest.v1+json"
        },
        timeout=10,
    )
    assert manifest.status_code == 200
    assert manifest.headers["Docker-Content-Digest"] == record.digest
    assert record.image == f"{registry}/sentiment-api@{record.digest}"
    assert record.image in output
    assert f"size     {record.size_mb} MB" in output
    assert record.size_bytes > 50_000_000


def test_the_labels_name_the_commit_and_the_pinned_model(built, trained_registry, delivery):
    record, _ = built
    model = ModelFolder(trained_registry).metadata()
    pin = read_pin(Path(delivery.env["SENTIMENT_CHAMPION_FILE"]))
    found = record.labels
    assert found[labels.MODEL_VERSION] == model.version == pin.version
    assert found[labels.MODEL_SHA256] == model.sha256
    assert found[labels.MODEL_DIGEST] == record.model.digest == pin.digest
    # Pulled by that digest into the build's own registry, whole.
    pulled = ModelFolder(delivery.tmp / "models-of-the-build")
    assert pulled.load(pin.version).metadata == model
    assert found[labels.REVISION].removesuffix("-dirty") == head_commit()
    assert found[labels.SOURCE_TREE] == record.source_tree
    assert found[labels.CREATED] == record.model_dump(mode="json")["built_at"]
    assert found[labels.VERSION] == record.version


def test_the_image_holds_the_serving_runtime_and_no_release_code(engine, built):
    tag = built[0].tag
    site = "/opt/venv/lib/python3.11/site-packages"
    listing = _in_image(engine, tag, f"ls -1 /app /app/config; ls -1 {site}; ls -1 /opt/venv/bin")
    names = set(listing.split())
    assert {"config", "models", "base.yaml", "dev.yaml", "prod.yaml", "stage.yaml"} <= names
    assert {"sentiment", "flask", "sentiment-serve"} <= names
    assert not names & {*RELEASE_PACKAGES, *RELEASE_ONLY_LIBRARIES, "pip"}
    assert "sentiment" not in _in_image(engine, tag, "ls -1 /opt/venv/bin").split()  # no CLI
    # The bundle has a compiled scorer: nothing to unpickle, no scikit-learn stack.
    assert not names & {"sklearn", "scipy", "numpy", "joblib"}
    assert not names & {"promotion.yaml", "delivery.yaml", "training.yaml", "wheels"}
    # Nor anywhere else: no module of the release tooling can be imported in the image.
    probe = "; ".join(
        f"python3 -c 'import {name}' 2>/dev/null && echo {name}"
        for name in (*RELEASE_PACKAGES, *RELEASE_ONLY_LIBRARIES)
    )
    assert _in_image(engine, tag, probe).split() == []
    assert _in_image(engine, tag, "command -v gcc cc pip; ls /wheels 2>/dev/null").split() == []


def test_the_healthcheck_probes_readiness(engine, built, on_test, delivery):
    details = engine.image_inspect(built[0].tag)
    # Docker keeps it under Config, Podman at the top level.
    healthcheck = (details.get("Config") or {}).get("Healthcheck") or details.get("Healthcheck")
    assert healthcheck, "the HEALTHCHECK was lost (podman needs --format docker)"
    command = healthcheck["Test"]
    assert command[0] == "CMD"
    assert any("/readyz" in part for part in command)
    assert _exec(engine, delivery.container("test"), *command[1:]).returncode == 0


def test_the_documented_curl_request_works(on_test, delivery):
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


def test_predictions_are_audited_on_the_environments_volume_and_take_feedback(on_test, delivery):
    """The read-only container writes its audit log and outcome store to the volume the
    local target mounts (<state>/monitoring/test), naming the image it runs as."""
    url = delivery.url("test")
    answered = requests.post(f"{url}/predict/", json={"review": "audited"},
                             headers={"X-Request-ID": "container-audit"}, timeout=10)  # fmt: skip
    assert answered.status_code == 200
    volume = delivery.state_dir / "monitoring" / "test"
    deadline = time.monotonic() + 10
    while not (found := AuditLog(volume).find("container-audit")):
        assert time.monotonic() < deadline, f"no audit event in {volume}"
        time.sleep(0.2)
    [event] = found
    assert event["image"] == delivery.deployment("test").image
    assert event["environment"] == "test"
    given = requests.post(f"{url}/v1/feedback", json={"request_id": "container-audit",
                                                      "label": 1}, timeout=10)  # fmt: skip
    assert given.status_code == 201, given.text


def test_a_body_of_megabytes_through_the_port_gets_the_413_json(on_test, delivery):
    """Through the engine's port forwarding an unread body used to reset the connection."""
    body = b'{"reviews": ["' + b"x" * 2_000_000 + b'"]}'
    response = requests.post(f"{delivery.url('test')}/v1/predict", data=body, timeout=30)
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"


def test_the_try_it_page_and_its_assets_are_in_the_image(on_test, delivery):
    for path, kind in (("/", "text/html"), ("/static/try-it.js", "text/javascript"),
                       ("/static/try-it.css", "text/css")):  # fmt: skip
        response = requests.get(f"{delivery.url('test')}{path}", timeout=5)
        assert response.status_code == 200, path
        assert response.headers["Content-Type"].startswith(kind), path


def test_it_runs_as_a_non_root_user(engine, on_test, delivery):
    assert _exec(engine, delivery.container("test"), "id", "-u").stdout.strip() == "10001"


def test_the_root_filesystem_is_read_only_and_tmp_is_writable(engine, on_test, delivery):
    name = delivery.container("test")
    for path in ("/app/x", "/opt/venv/x", "/app/config/x"):
        refused = _exec(engine, name, "sh", "-c", f"echo > {path}")
        assert refused.returncode != 0
        assert "Read-only file system" in refused.stderr
    assert _exec(engine, name, "sh", "-c", "echo > /tmp/x").returncode == 0


def test_it_reports_the_model_baked_in(on_test, built, delivery):
    model = requests.get(f"{delivery.url('test')}/v1/model", timeout=5).json()
    assert model["model"]["version"] == built[0].model.version == on_test.model_version
    assert model["model"]["sha256"] == built[0].model.sha256
    assert model["model"]["scorer"] == "compiled"
    assert model["service"]["environment"] == "test"


def test_test_and_stage_run_the_same_image_with_their_own_config(
    engine, on_test, on_stage, delivery, built
):
    record = built[0]
    assert on_test.image == on_stage.image == record.image
    image_id = engine.image_inspect(record.image)["Id"]
    for environment, deployed in (("test", on_test), ("stage", on_stage)):
        container = engine._inspect("container", delivery.container(environment))
        assert container["Image"].removeprefix("sha256:") == image_id.removeprefix("sha256:")
        url = delivery.url(environment)
        if environment == "stage":  # stage asks for API keys; the gates hold one
            assert requests.get(f"{url}/v1/model", timeout=5).status_code == 401
        headers = delivery.headers(environment)
        info = requests.get(f"{url}/v1/model", headers=headers, timeout=5).json()
        assert info["service"]["environment"] == environment
        assert info["service"]["git_commit"] == record.labels[labels.REVISION]
        assert deployed.config_sha256 != ""
    assert on_test.config_sha256 != on_stage.config_sha256


def test_status_shows_what_runs_where(on_test, on_stage, delivery, built):
    rows = status(delivery)
    for environment in ("test", "stage"):
        assert rows[environment]["state"] == "running"
        assert rows[environment]["health"] == "ready"
        assert rows[environment]["image"] == built[0].image
        assert rows[environment]["model_version"] == built[0].model.version
        assert rows[environment]["release"] == "deployed without promotion"
    assert rows["prod"]["state"] == "not deployed"


def test_render_pins_the_deployed_digest(on_stage, delivery):
    # The overlays' ConfigMap holds the repository's service config, not the tests' copy.
    done = delivery.run("render", "stage", SENTIMENT_CONFIG_DIR=str(SERVICE_CONFIG_DIR))
    assert f"image: {on_stage.image}" in done.stdout


def test_redeploying_replaces_the_container(engine, on_test, delivery):
    delivery.run("deploy", "test")
    record = delivery.deployment("test")
    assert record.replaced_previous is True
    listed = subprocess.run(
        [engine.binary, "ps", "--all", "--filter", f"name={delivery.container('test')}",
         "--format", "{{.Names}}"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert listed.stdout.split() == [delivery.container("test")]


def test_an_unknown_digest_is_refused_and_test_keeps_running(on_test, delivery):
    done = delivery.run("deploy", "test", "--image", "sha256:" + "0" * 64, check=False)
    assert done.returncode == 1
    assert "is not in the registry" in done.stderr
    assert requests.get(f"{delivery.url('test')}/readyz", timeout=5).status_code == 200


def test_a_port_in_use_is_refused(delivery, built):
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", delivery.ports["dev"]))
        squatter.listen()
        done = delivery.run("deploy", "dev", check=False)
    assert done.returncode == 1
    assert f"port {delivery.ports['dev']}" in done.stderr
    assert "in use" in done.stderr


def test_a_container_that_never_gets_ready_fails_with_its_logs(delivery, built, tmp_path):
    config = tmp_path / "config"
    shutil.copytree(SERVICE_CONFIG_DIR, config)
    (config / "prod.yaml").write_text(
        "service:\n  customer_facing: true\nauth:\n  required: true\n"
        "model:\n  version: 20990101T000000Z-deadbeef\n"
    )
    done = delivery.run("deploy", "prod", check=False, SENTIMENT_CONFIG_DIR=str(config))
    assert done.returncode == 1
    assert "did not become ready" in done.stderr
    assert "--- its last log lines ---" in done.stderr
    assert "20990101T000000Z-deadbeef" in done.stderr.split("--- its last log lines ---")[1]
    assert not (delivery.state_dir / "deployments" / "prod.json").exists()


def test_sigterm_stops_it_gracefully(engine, delivery, built):
    delivery.run("deploy", "dev")
    name = delivery.container("dev")
    subprocess.run([engine.binary, "stop", "--time", "30", name], capture_output=True, check=True)
    state = engine._inspect("container", name)["State"]
    logs = engine.logs(name, 50)
    assert state["ExitCode"] == 0, logs
    assert "Shutting down: Master" in logs
    delivery.run("undeploy", "dev")
