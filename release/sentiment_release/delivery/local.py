"""The local target: each environment is one container on its own port, deployed by digest.

The container reads the service's config from this checkout, read-only, the way a pod
reads the ConfigMap that environments/ generates from the same files.
"""

import socket
import time
from pathlib import Path

import requests

from sentiment_release.delivery import labels
from sentiment_release.delivery.api_keys import ApiKeyStore
from sentiment_release.delivery.config import LocalSettings
from sentiment_release.delivery.engine import Engine
from sentiment_release.delivery.errors import DeliveryError, NotReadyError, PortInUseError
from sentiment_release.delivery.records import DeploymentRecord, Records
from sentiment_release.delivery.service_config import config_sha256, environment_settings
from sentiment_release.delivery.targets import EnvironmentStatus, probe
from sentiment_release.support.waiting import WaitTimeout, wait_until

CONTAINER_PORT = 8000
# What a container may be in while it starts.
STARTING = ("running", "created", "configured")


class LocalContainers:
    kind = "local"

    def __init__(
        self,
        engine: Engine,
        settings: LocalSettings,
        records: Records,
        ports: dict[str, int],
        config_dir: Path,
        api_keys: ApiKeyStore,
        monitoring_root: Path,
    ):
        self.monitoring_root = monitoring_root
        self.engine = engine
        self.settings = settings
        self.records = records
        self.ports = ports
        self.config_dir = config_dir
        self.api_keys = api_keys

    def describe(self) -> str:
        return (
            f"local {self.engine.name} containers on this machine "
            f"({self.settings.container_prefix}<env>)"
        )

    def container_name(self, environment: str) -> str:
        return f"{self.settings.container_prefix}{environment}"

    def url(self, environment: str) -> str:
        return f"http://127.0.0.1:{self._port(environment)}"

    def deploy(self, environment: str, reference: str) -> DeploymentRecord:
        """The image is pulled before the running container is touched, so an unknown
        digest leaves the environment as it was."""
        name = self.container_name(environment)
        port = self._port(environment)
        config_hash = config_sha256(self.config_dir, environment)
        key_mounts = self._key_mounts(environment)
        monitoring_mounts = self._monitoring_mounts(environment)
        self.engine.pull(reference)
        replaced = self.engine.remove_container(name)
        if replaced:
            self.records.forget_deployment(environment)
        _check_port_free(port, environment)

        options = [
            "--publish", f"127.0.0.1:{port}:{CONTAINER_PORT}",
            "--env", f"APP_ENV={environment}",
            "--env", f"SENTIMENT_BUILD__IMAGE={reference}",
            "--volume", f"{self.config_dir.resolve()}:/app/config:ro",
            "--read-only",
            "--tmpfs", "/tmp:rw,size=64m,mode=1777",  # noqa: S108  (a mount in the container)
            "--cap-drop", "ALL",
            "--security-opt", "no-new-privileges",
            "--label", f"{labels.CONTAINER_ENVIRONMENT}={environment}",
            "--label", f"{labels.CONTAINER_IMAGE}={reference}",
            "--label", f"{labels.CONTAINER_CONFIG_SHA256}={config_hash}",
            *key_mounts,
            *monitoring_mounts,
        ]  # fmt: skip
        if self.engine.name == "podman":
            options.insert(options.index("--read-only") + 1, "--read-only-tmpfs=false")
        started = time.monotonic()
        self.engine.start_container(name, reference, options)
        model_version = self._wait_until_ready(name, port)
        record = DeploymentRecord.ready_now(
            environment, reference, "local", self.url(environment), config_hash, model_version,
            started, replaced,
        )  # fmt: skip
        self.records.save_deployment(record)
        return record

    def remove(self, environment: str) -> bool:
        removed = self.engine.remove_container(self.container_name(environment))
        self.records.forget_deployment(environment)
        return removed

    def status(self, environment: str) -> EnvironmentStatus:
        container = self.engine.container(self.container_name(environment))
        if container is None:
            return EnvironmentStatus(environment, "not deployed", None, "-")
        image = container.labels.get(labels.CONTAINER_IMAGE)
        if container.state != "running":
            return EnvironmentStatus(environment, container.state, image, "-")
        health, model_version = probe(self.url(environment))
        return EnvironmentStatus(environment, container.state, image, health, model_version)

    def close(self) -> None:
        """Nothing to release: the containers keep running, by design."""

    def _key_mounts(self, environment: str) -> list[str]:
        """Where auth is required, this machine's key hashes, mounted where the service
        reads them (read-only, as a Secret would be); checked before anything changes."""
        auth = environment_settings(self.config_dir, environment).auth
        if not auth.required:
            return []
        hashes = self.api_keys.deployable_hashes_file(environment).resolve()
        return ["--volume", f"{hashes}:{auth.key_hashes_file}:ro"]

    def _monitoring_mounts(self, environment: str) -> list[str]:
        """The audit log and outcome store's volume: <state>/monitoring/<env> on this
        machine (kept across deploys, read by `sentiment audit` and `sentiment feedback`),
        writable by the image's user."""
        monitoring = environment_settings(self.config_dir, environment).monitoring
        if not monitoring.enabled:
            return []
        directory = (self.monitoring_root / environment).resolve()
        directory.mkdir(parents=True, exist_ok=True)
        if self.engine.name == "podman":  # :U gives it to the container's user
            return ["--volume", f"{directory}:{monitoring.dir}:U"]
        directory.chmod(0o777)  # docker maps no owner: the image's user must write here
        return ["--volume", f"{directory}:{monitoring.dir}"]

    def _port(self, environment: str) -> int:
        try:
            return self.ports[environment]
        except KeyError:
            raise DeliveryError(
                f"{environment} has no port (config/promotion.yaml environments)"
            ) from None

    def _wait_until_ready(self, name: str, port: int) -> str | None:
        """Polls /readyz until it says ready; the model version it reports. On timeout or
        exit the container is removed and the error ends with its last log lines."""
        url = f"http://127.0.0.1:{port}/readyz"
        last = ["no answer yet"]

        def ready() -> dict | None:
            try:
                response = requests.get(url, timeout=2)
            except requests.RequestException as error:
                last[0] = f"/readyz unreachable ({type(error).__name__})"
            else:
                if response.status_code == 200:
                    return response.json()
                # The model is loaded before gunicorn listens, so any other answer is final.
                reason = f"/readyz answered {response.status_code}: {response.text[:500]}"
                raise NotReadyError(self._not_ready(name, reason))
            container = self.engine.container(name)
            if container is None or container.state not in STARTING:
                state = container.state if container else "gone"
                raise NotReadyError(self._not_ready(name, f"the container is {state}"))
            return None

        timeout = self.settings.ready_timeout_seconds
        try:
            answer = wait_until(ready, timeout=timeout, what=lambda: f"last: {last[0]}")
        except WaitTimeout as error:
            raise NotReadyError(
                self._not_ready(name, f"not ready after {timeout:g}s ({error})")
            ) from None
        return answer.get("model_version")

    def _not_ready(self, name: str, reason: str) -> str:
        """The failure message with the container's last log lines; the container is removed."""
        tail = self.settings.log_tail_lines
        # Our own readiness polls would fill the tail; the lines that explain are the others.
        lines = [
            line
            for line in self.engine.logs(name, tail * 20).splitlines()
            if '"route": "/readyz"' not in line
        ][-tail:]
        self.engine.remove_container(name)
        logs = "\n".join(lines) or "(no log lines)"
        return (
            f"container {name} did not become ready: {reason}\n--- its last log lines ---\n{logs}"
        )


def _check_port_free(port: int, environment: str) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe_socket:
        try:
            probe_socket.bind(("127.0.0.1", port))
        except OSError:
            raise PortInUseError(
                f"port {port} (configured for {environment} in config/promotion.yaml) "
                "is in use by another program; stop it or change the port"
            ) from None
