"""Container tests: build the real image once, push it to a private registry, deploy it.

Everything is isolated from a developer's own deployments: its own state directory,
registry port, container names and host ports. Skipped when no container engine answers.
"""

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from delivery.config import load_delivery_settings
from delivery.engine import Engine, detect_engine
from delivery.errors import NoEngineError
from settings import ENVIRONMENTS
from tests.conftest import CONFIG_DIR, ROOT

SENTIMENT = str(Path(sys.executable).parent / "sentiment")
PREFIX = "sentiment-pytest-"


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


@pytest.fixture(scope="session")
def engine() -> Engine:
    delivery = load_delivery_settings(CONFIG_DIR)
    try:
        return detect_engine(delivery.engine, tls_verify=False)
    except NoEngineError as error:
        pytest.skip(f"no container engine: {error}")


class Delivery:
    """Runs `sentiment` delivery commands in the isolated setting."""

    def __init__(self, env: dict[str, str], ports: dict[str, int], state_dir: Path):
        self.env = env
        self.ports = ports
        self.state_dir = state_dir

    def run(self, *args: str, check: bool = True, **env: str) -> subprocess.CompletedProcess:
        done = subprocess.run(
            [SENTIMENT, *args],
            cwd=ROOT,
            env={**self.env, **env},
            capture_output=True,
            text=True,
            timeout=1200,
            check=False,
        )
        if check and done.returncode != 0:
            pytest.fail(f"sentiment {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
        return done

    def url(self, environment: str) -> str:
        return f"http://127.0.0.1:{self.ports[environment]}"

    def container(self, environment: str) -> str:
        return f"{PREFIX}{environment}"

    def deployment(self, environment: str) -> dict[str, Any]:
        path = self.state_dir / "deployments" / f"{environment}.json"
        return json.loads(path.read_text())


@pytest.fixture(scope="session")
def delivery(
    engine: Engine, trained_registry: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Delivery]:
    state_dir = tmp_path_factory.mktemp("delivery-state")
    registry_port, *env_ports = _free_ports(1 + len(ENVIRONMENTS))
    ports = dict(zip(ENVIRONMENTS, env_ports, strict=True))
    env = {
        **os.environ,
        "SENTIMENT_MODEL__REGISTRY_DIR": str(trained_registry),
        "DELIVERY_ENGINE": engine.name,
        "DELIVERY_STATE_DIR": str(state_dir),
        "DELIVERY_REGISTRY__ADDRESS": f"127.0.0.1:{registry_port}",
        "DELIVERY_DEPLOY__CONTAINER_PREFIX": PREFIX,
        "DELIVERY_DEPLOY__PORTS": json.dumps(ports),
    }
    env.pop("APP_ENV", None)
    tool = Delivery(env, ports, state_dir)
    yield tool
    for environment in ENVIRONMENTS:
        tool.run("undeploy", environment, check=False)
    tool.run("registry", "stop", check=False)


@pytest.fixture(scope="session")
def built(delivery: Delivery, engine: Engine) -> Iterator[dict[str, Any]]:
    """The record of one real build (the image is removed from the host afterwards)."""
    done = delivery.run("build")
    digest = (delivery.state_dir / "builds" / "LATEST").read_text().strip()
    record = json.loads((delivery.state_dir / "builds" / f"{digest[7:]}.json").read_text())
    record["output"] = done.stdout
    yield record
    for reference in (record["tag"], record["image"]):
        subprocess.run([engine.binary, "rmi", "--force", reference], capture_output=True)
