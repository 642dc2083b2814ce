"""The Kubernetes target: `kubectl apply -k environments/<env>` with the image pinned, a
rollout wait, and a port-forward so gates reach the Service from where they run.

kubectl finds its cluster the usual way ($KUBECONFIG, else ~/.kube/config); CI writes the
environment's kubeconfig secret to a file and points $KUBECONFIG at it.
"""

import re
import subprocess
import threading
from dataclasses import dataclass, field

import yaml

from delivery import manifests
from delivery.errors import DeliveryError, NotReadyError

FORWARDING = re.compile(r"Forwarding from 127\.0\.0\.1:(\d+)")


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


@dataclass
class Cluster:
    kubectl: str
    rollout_timeout_seconds: float
    _forwards: list[subprocess.Popen] = field(default_factory=list)

    def context(self) -> str:
        done = self._run("config", "current-context")
        return done.stdout.strip() if done.returncode == 0 else "(no current context)"

    def deploy(self, environment: str, reference: str) -> str:
        """Applies the pinned overlay, waits for the rollout; the URL of a port-forward."""
        with manifests.pinned_overlay(environment, reference) as overlay:
            found = workload(manifests.kustomize(overlay, manifests.ENVIRONMENTS_DIR / environment))
            self._check("apply", "-k", str(overlay))
        done = self._run(
            "rollout", "status", f"deployment/{found.deployment}", "-n", found.namespace,
            f"--timeout={self.rollout_timeout_seconds:g}s",
        )  # fmt: skip
        if done.returncode != 0:
            raise NotReadyError(
                f"{environment}: deployment/{found.deployment} in {found.namespace} did not "
                f"roll out within {self.rollout_timeout_seconds:g}s: "
                f"{(done.stderr or done.stdout).strip()}"
            )
        return self.forward(found)

    def forward(self, found: Workload) -> str:
        """Starts `kubectl port-forward` to the Service on a free local port; its URL."""
        process = subprocess.Popen(  # noqa: S603
            [self.kubectl, "port-forward", "-n", found.namespace, f"service/{found.service}",
             f":{found.port}"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        self._forwards.append(process)
        assert process.stdout is not None
        line = process.stdout.readline()
        match = FORWARDING.search(line)
        if not match:
            process.kill()
            rest = process.communicate(timeout=10)[0]
            raise NotReadyError(
                f"kubectl port-forward to service/{found.service} failed: {(line + rest).strip()}"
            )
        # It logs a line per connection: keep its pipe drained or it blocks under load.
        threading.Thread(target=process.stdout.read, daemon=True).start()
        return f"http://127.0.0.1:{match[1]}"

    def remove(self, environment: str) -> None:
        """Deletes the environment's Deployment (the Service and config stay)."""
        # The names do not depend on the image, so the overlay is rendered unpinned.
        found = workload(manifests.kustomize(manifests.ENVIRONMENTS_DIR / environment))
        self._check("delete", "deployment", found.deployment, "-n", found.namespace,
                    "--ignore-not-found")  # fmt: skip

    def close(self) -> None:
        """Stops every port-forward this object started."""
        for process in self._forwards:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
        self._forwards.clear()

    def _check(self, *args: str) -> str:
        done = self._run(*args)
        if done.returncode != 0:
            raise DeliveryError(f"kubectl {args[0]} failed: {(done.stderr or done.stdout).strip()}")
        return done.stdout

    def _run(self, *args: str) -> subprocess.CompletedProcess[str]:
        try:
            return subprocess.run(  # noqa: S603
                [self.kubectl, *args], capture_output=True, text=True, check=False,
                timeout=self.rollout_timeout_seconds + 60,
            )  # fmt: skip
        except (OSError, subprocess.TimeoutExpired) as error:
            raise DeliveryError(f"kubectl {args[0]} could not run: {error}") from None
