"""Where environments run: the one interface `deploy`, `status` and promotion all use.
config/delivery.yaml deploy.target picks one of its two kinds:

    local        one container per environment on this machine (local.py)
    kubernetes   `kubectl apply -k environments/<env>`, the image pinned (kubernetes.py)
"""

from dataclasses import dataclass
from typing import Protocol

import requests

from sentiment_release.delivery.records import DeploymentRecord

PROBE_TIMEOUT_SECONDS = 2


@dataclass(frozen=True)
class EnvironmentStatus:
    environment: str
    state: str  # running, exited, "2/3 ready", not deployed ...
    image: str | None
    health: str  # ready, not ready (503), unreachable (...), -
    model_version: str | None = None


class DeployTarget(Protocol):
    kind: str

    def describe(self) -> str:
        """One line for the log: which target, which engine or cluster."""

    def deploy(self, environment: str, reference: str) -> DeploymentRecord:
        """Runs `reference` (pinned by digest) as `environment` and waits until it is ready;
        a deploy that fails leaves an error, never a half-recorded deployment."""

    def remove(self, environment: str) -> bool: ...

    def status(self, environment: str) -> EnvironmentStatus: ...

    def close(self) -> None:
        """Releases what the target holds open (port-forwards); deployments stay."""


def probe(url: str) -> tuple[str, str | None]:
    """(health, model version) of the service at `url`."""
    try:
        ready = requests.get(f"{url}/readyz", timeout=PROBE_TIMEOUT_SECONDS)
        if ready.status_code != 200:
            return f"not ready ({ready.status_code})", None
        return "ready", ready.json().get("model_version")
    except (requests.RequestException, ValueError, AttributeError) as error:
        return f"unreachable ({type(error).__name__})", None
