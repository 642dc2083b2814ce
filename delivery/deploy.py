"""Local targets: each environment is one container on its own port, deployed by digest.

The container reads config/ from this checkout, read-only, the way a pod reads the
ConfigMap that environments/ generates from the same files.
"""

import hashlib
import socket
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import requests

from delivery.config import DeliverySettings
from delivery.engine import Engine
from delivery.errors import NotReadyError, PortInUseError
from delivery.records import Records
from delivery.references import digest_of
from settings import ENVIRONMENTS

LABEL = "io.github.sentiment-mlops"
CONTAINER_PORT = 8000
POLL_SECONDS = 0.25


def container_name(delivery: DeliverySettings, environment: str) -> str:
    return f"{delivery.deploy.container_prefix}{environment}"


def config_sha256(config_dir: Path, environment: str) -> str:
    """What decides an environment's behaviour besides the image: base.yaml + <env>.yaml."""
    digest = hashlib.sha256()
    for name in ("base.yaml", f"{environment}.yaml"):
        digest.update(name.encode() + b"\0" + (config_dir / name).read_bytes() + b"\0")
    return digest.hexdigest()


def deploy(
    engine: Engine,
    delivery: DeliverySettings,
    records: Records,
    environment: str,
    reference: str,
    config_dir: Path,
) -> dict[str, Any]:
    """Runs `reference` (pulled from the registry by digest) as ENV and waits until ready.

    The image is pulled before the running container is touched, so an unknown digest
    leaves the environment as it was.
    """
    name = container_name(delivery, environment)
    port = delivery.deploy.ports[environment]
    engine.pull(reference)
    replaced = engine.remove_container(name)
    if replaced:
        records.forget_deployment(environment)
    _check_port_free(port, environment)

    config_dir = config_dir.resolve()
    config_hash = config_sha256(config_dir, environment)
    options = [
        "--publish", f"127.0.0.1:{port}:{CONTAINER_PORT}",
        "--env", f"APP_ENV={environment}",
        "--volume", f"{config_dir}:/app/config:ro",
        "--read-only",
        "--tmpfs", "/tmp:rw,size=64m,mode=1777",  # noqa: S108  (a mount in the container)
        "--cap-drop", "ALL",
        "--security-opt", "no-new-privileges",
        "--label", f"{LABEL}.environment={environment}",
        "--label", f"{LABEL}.image={reference}",
        "--label", f"{LABEL}.config-sha256={config_hash}",
    ]  # fmt: skip
    if engine.name == "podman":
        options.insert(options.index("--read-only") + 1, "--read-only-tmpfs=false")
    started = time.monotonic()
    engine.start_container(name, reference, options)
    readiness = wait_until_ready(engine, delivery, name, port)
    record = {
        "environment": environment,
        "image": reference,
        "digest": digest_of(reference),
        "container": name,
        "url": f"http://127.0.0.1:{port}",
        "config_sha256": config_hash,
        "model_version": readiness["model_version"],
        "engine": engine.name,
        "deployed_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "seconds_to_ready": round(time.monotonic() - started, 2),
        "replaced_previous": replaced,
    }
    records.save_deployment(environment, record)
    return record


def undeploy(
    engine: Engine, delivery: DeliverySettings, records: Records, environment: str
) -> bool:
    removed = engine.remove_container(container_name(delivery, environment))
    records.forget_deployment(environment)
    return removed


def wait_until_ready(
    engine: Engine, delivery: DeliverySettings, name: str, port: int
) -> dict[str, Any]:
    """Polls /readyz until it says ready; on timeout or exit, fails with the last log lines."""
    url = f"http://127.0.0.1:{port}/readyz"
    deadline = time.monotonic() + delivery.deploy.ready_timeout_seconds
    last = "no answer yet"
    while time.monotonic() < deadline:
        try:
            response = requests.get(url, timeout=2)
        except requests.RequestException as error:
            last = f"/readyz unreachable ({type(error).__name__})"
        else:
            if response.status_code == 200:
                return response.json()
            # The model is loaded before gunicorn listens, so any other answer is final.
            reason = f"/readyz answered {response.status_code}: {response.text[:500]}"
            raise NotReadyError(_not_ready(engine, delivery, name, reason))
        container = engine.container(name)
        if container is None or container.state not in ("running", "created", "configured"):
            state = container.state if container else "gone"
            raise NotReadyError(_not_ready(engine, delivery, name, f"the container is {state}"))
        time.sleep(POLL_SECONDS)
    raise NotReadyError(
        _not_ready(
            engine,
            delivery,
            name,
            f"not ready after {delivery.deploy.ready_timeout_seconds:.0f}s; last: {last}",
        )
    )


def status(engine: Engine, delivery: DeliverySettings, records: Records) -> list[dict[str, Any]]:
    """For each environment: what runs there (from the engine) and how it answers."""
    rows = []
    for environment in ENVIRONMENTS:
        port = delivery.deploy.ports[environment]
        container = engine.container(container_name(delivery, environment))
        record = records.deployment(environment) or {}
        row: dict[str, Any] = {
            "environment": environment,
            "port": port,
            "state": container.state if container else "not deployed",
            "image": container.labels.get(f"{LABEL}.image") if container else None,
            "model_version": None,
            "health": "-",
            "deployed_at": record.get("deployed_at"),
        }
        if container and container.state == "running":
            row.update(_probe(port))
        rows.append(row)
    return rows


def _probe(port: int) -> dict[str, Any]:
    base = f"http://127.0.0.1:{port}"
    try:
        ready = requests.get(f"{base}/readyz", timeout=2)
        if ready.status_code != 200:
            return {"health": f"not ready ({ready.status_code})"}
        model = requests.get(f"{base}/v1/model", timeout=2).json()
    except (requests.RequestException, ValueError) as error:
        return {"health": f"unreachable ({type(error).__name__})"}
    return {"health": "ready", "model_version": model["model"]["version"]}


def _check_port_free(port: int, environment: str) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            raise PortInUseError(
                f"port {port} (configured for {environment} in config/delivery.yaml "
                "deploy.ports) is in use by another program; stop it or change the port"
            ) from None


def _not_ready(engine: Engine, delivery: DeliverySettings, name: str, reason: str) -> str:
    """The failure message with the container's last log lines; the container is removed."""
    tail = delivery.deploy.log_tail_lines
    # Our own readiness polls would fill the tail; the lines that explain are the others.
    lines = [
        line
        for line in engine.logs(name, tail * 20).splitlines()
        if '"route": "/readyz"' not in line
    ][-tail:]
    engine.remove_container(name)
    logs = "\n".join(lines) or "(no log lines)"
    return f"container {name} did not become ready: {reason}\n--- its last log lines ---\n{logs}"
