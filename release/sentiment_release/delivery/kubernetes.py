"""The Kubernetes target: `kubectl apply -k environments/<env>` with the image pinned, a
rollout wait, and a port-forward so gates reach the Service from where they run.

kubectl finds its cluster the usual way ($KUBECONFIG, else ~/.kube/config); CI writes the
environment's kubeconfig secret to a file and points $KUBECONFIG at it.
"""

import json
import queue
import re
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

from sentiment_release.delivery import manifests
from sentiment_release.delivery.api_keys import ApiKeyStore
from sentiment_release.delivery.errors import DeliveryError, NotReadyError
from sentiment_release.delivery.records import DeploymentRecord, Records
from sentiment_release.delivery.service_config import config_sha256, environment_settings
from sentiment_release.delivery.targets import EnvironmentStatus, probe
from sentiment_release.support.process import CommandError, Finished, run, start, stop
from sentiment_release.support.waiting import WaitTimeout, wait_until

FORWARDING = re.compile(r"Forwarding from 127\.0\.0\.1:(\d+)")
CONTAINER = "api"
# How long a port-forward may take to say where it listens, and then to answer ready.
FORWARD_TIMEOUT_SECONDS = 30


@dataclass(frozen=True)
class Workload:
    namespace: str
    deployment: str
    service: str
    port: int


def workload(rendered: str) -> Workload:
    """The Deployment and Service that serve the API, from rendered manifests."""
    documents = [d for d in yaml.safe_load_all(rendered) if d]
    kinds = {d["kind"]: d for d in documents}
    try:
        deployment, service = kinds["Deployment"], kinds["Service"]
        return Workload(
            namespace=deployment["metadata"]["namespace"],
            deployment=deployment["metadata"]["name"],
            service=service["metadata"]["name"],
            port=int(service["spec"]["ports"][0]["port"]),
        )
    except (KeyError, IndexError, TypeError, ValueError) as error:
        raise DeliveryError(
            f"the manifests lack a namespaced Deployment and Service: {error}"
        ) from None


class Kubernetes:
    kind = "kubernetes"

    def __init__(
        self,
        kubectl: str,
        rollout_timeout_seconds: float,
        environments_dir: Path,
        config_dir: Path,
        records: Records,
        api_keys: ApiKeyStore,
    ):
        self.kubectl = kubectl
        self.rollout_timeout_seconds = rollout_timeout_seconds
        self.environments_dir = environments_dir
        self.config_dir = config_dir
        self.records = records
        self.api_keys = api_keys
        self._forwards: list[subprocess.Popen] = []

    def describe(self) -> str:
        done = self._run("config", "current-context")
        context = done.stdout.strip() if done.ok else "(no current context)"
        return f"kubernetes, context {context} (kubectl apply -k environments/<env>)"

    def deploy(self, environment: str, reference: str) -> DeploymentRecord:
        """Applies the pinned overlay, waits for the rollout, forwards a local port to it."""
        self.close()  # a rollback deploys again: one port-forward at a time
        started = time.monotonic()
        overlay_dir = self.environments_dir / environment
        key_hashes = self._key_hashes(environment)
        secret = None
        if key_hashes is not None:
            namespace = self._workload(environment).namespace
            secret = manifests.GeneratedSecret(
                manifests.KEY_SECRET, namespace, {manifests.KEY_FILE: key_hashes}
            )
        with manifests.pinned_overlay(overlay_dir, reference, secret) as overlay:
            found = workload(manifests.kustomize(overlay, overlay_dir))
            self._check("apply", "-k", str(overlay))
        done = self._run(
            "rollout", "status", f"deployment/{found.deployment}", "-n", found.namespace,
            f"--timeout={self.rollout_timeout_seconds:g}s",
        )  # fmt: skip
        if not done.ok:
            raise NotReadyError(
                f"{environment}: deployment/{found.deployment} in {found.namespace} did not "
                f"roll out within {self.rollout_timeout_seconds:g}s: {done.output}"
            )
        url = self.forward(found)
        try:
            _, model_version = wait_until(
                lambda: answer if (answer := probe(url))[0] == "ready" else None,
                timeout=30,
                what=f"{environment} answers ready through {url}",
            )
        except WaitTimeout as error:
            raise NotReadyError(f"{environment}: {error}") from None
        record = DeploymentRecord.ready_now(
            environment, reference, "kubernetes", url, config_sha256(self.config_dir, environment),
            model_version, started, replaced=False,
        )  # fmt: skip
        self.records.save_deployment(record)
        return record

    def _key_hashes(self, environment: str) -> bytes | None:
        """This machine's key hashes where auth is required (checked before anything is
        applied), else None."""
        if not environment_settings(self.config_dir, environment).auth.required:
            return None
        return self.api_keys.deployable_hashes_file(environment).read_bytes()

    def forward(self, found: Workload) -> str:
        """Starts `kubectl port-forward` to the Service on a free local port; its URL."""
        process = start(
            [self.kubectl, "port-forward", "-n", found.namespace, f"service/{found.service}",
             f":{found.port}"],
        )  # fmt: skip
        self._forwards.append(process)
        lines = _drained(process)
        try:
            first = lines.get(timeout=FORWARD_TIMEOUT_SECONDS)
        except queue.Empty:
            first = f"(nothing in {FORWARD_TIMEOUT_SECONDS}s)"
        match = FORWARDING.search(first)
        if not match:
            stop(process)
            rest = "".join(_rest(lines))
            raise NotReadyError(
                f"kubectl port-forward to service/{found.service} failed: {(first + rest).strip()}"
            )
        return f"http://127.0.0.1:{match[1]}"

    def remove(self, environment: str) -> bool:
        """Deletes the environment's Deployment (the Service and config stay)."""
        found = self._workload(environment)
        output = self._check("delete", "deployment", found.deployment, "-n", found.namespace,
                             "--ignore-not-found")  # fmt: skip
        self.records.forget_deployment(environment)
        return bool(output.strip())

    def status(self, environment: str) -> EnvironmentStatus:
        found = self._workload(environment)
        done = self._run("get", "deployment", found.deployment, "-n", found.namespace,
                         "--ignore-not-found", "-o", "json")  # fmt: skip
        if not done.ok:
            return EnvironmentStatus(environment, "unknown", None, f"kubectl: {done.output}")
        if not done.stdout.strip():
            return EnvironmentStatus(environment, "not deployed", None, "-")
        deployment = json.loads(done.stdout)
        containers = deployment["spec"]["template"]["spec"]["containers"]
        image = next((c["image"] for c in containers if c["name"] == CONTAINER), None)
        status = deployment.get("status", {})
        ready, wanted = status.get("readyReplicas", 0), deployment["spec"].get("replicas", 1)
        health = "ready" if ready and ready >= wanted else "not ready"
        record = self.records.deployment(environment)
        model = record.model_version if record and record.image == image else None
        return EnvironmentStatus(environment, f"{ready}/{wanted} ready", image, health, model)

    def close(self) -> None:
        """Stops every port-forward this target started."""
        for process in self._forwards:
            stop(process)
        self._forwards.clear()

    def _workload(self, environment: str) -> Workload:
        # The names do not depend on the image, so the overlay is rendered unpinned.
        return workload(manifests.kustomize(self.environments_dir / environment))

    def _check(self, *args: str) -> str:
        done = self._run(*args)
        if not done.ok:
            raise DeliveryError(f"kubectl {args[0]} failed: {done.output}")
        return done.stdout

    def _run(self, *args: str) -> Finished:
        try:
            return run([self.kubectl, *args], check=False,
                       timeout=self.rollout_timeout_seconds + 60)  # fmt: skip
        except CommandError as error:
            raise DeliveryError(f"kubectl {args[0]} could not run: {error}") from None


def _drained(process: subprocess.Popen) -> "queue.Queue[str]":
    """The process's first output lines ("" once it ends), read by a thread for as long as
    it runs: kubectl logs a line per connection, and a pipe nobody reads would block it
    under load. Lines past the first hundred are read and dropped."""
    lines: queue.Queue[str] = queue.Queue(maxsize=100)

    def pump() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            if not lines.full():
                lines.put(line)
        lines.put("")

    threading.Thread(target=pump, daemon=True).start()
    return lines


def _rest(lines: "queue.Queue[str]") -> list[str]:
    """What a stopped process still said, until it ended or went quiet."""
    found = []
    try:
        while line := lines.get(timeout=5):
            found.append(line)
    except queue.Empty:
        pass
    return found
