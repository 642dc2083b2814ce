"""Promotion's stages: deploy to local containers or to Kubernetes, then gates from gates/."""

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from delivery import deploy
from delivery.config import DeliverySettings
from delivery.engine import Engine
from delivery.errors import DeliveryError
from delivery.kubernetes import Cluster
from delivery.records import Records
from gates import runner
from gates.runner import GateContext
from gates.subject import Subject, image_subject


@dataclass
class LocalStages:
    engine: Engine
    delivery: DeliverySettings
    records: Records
    gates: GateContext
    config_dir: Path

    def subject(self, reference: str) -> Subject:
        return image_subject(self.engine, reference)

    def deploy(self, environment: str, reference: str) -> str:
        record = deploy.deploy(
            self.engine, self.delivery, self.records, environment, reference, self.config_dir
        )
        return record["url"]

    def gate(self, environment: str, subject: Subject, url: str) -> dict[str, Any]:
        return runner.run_environment_gate(self.gates, environment, subject, url, self.engine)

    def smoke(self, gate: str, environment: str, subject: Subject, url: str) -> dict[str, Any]:
        return runner.run_smoke_gate(self.gates, gate, environment, subject, url)

    def deploy_failed(
        self, gate: str, environment: str, subject: Subject, error: DeliveryError
    ) -> dict[str, Any]:
        return runner.deploy_failed(self.gates, gate, environment, subject, error)

    def remove(self, environment: str) -> None:
        deploy.undeploy(self.engine, self.delivery, self.records, environment)

    def close(self) -> None:
        """Nothing to stop: local containers keep running after promotion, by design."""


@dataclass
class KubernetesStages(LocalStages):
    """The same gates, run through a port-forward against what `kubectl apply -k` rolled out.
    Images are still pulled into the local engine: their labels say what they are, and
    the skew check reads the model out of the image."""

    cluster: Cluster

    def deploy(self, environment: str, reference: str) -> str:
        self.cluster.close()  # a rollback deploys again: one port-forward at a time
        return self.cluster.deploy(environment, reference)

    def remove(self, environment: str) -> None:
        self.cluster.remove(environment)

    def close(self) -> None:
        self.cluster.close()
