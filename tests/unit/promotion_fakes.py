"""Stand-ins for promotion's stages: deploys and gates that only record and obey a script."""

from dataclasses import dataclass, field
from typing import Any

from delivery.errors import DeliveryError, NotReadyError
from gates.evidence import EvidenceStore, timestamp, utc_now
from gates.subject import Subject


def subject(number: int, dirty: bool = False) -> Subject:
    digest = f"sha256:{number:064x}"
    commit = f"{number:040x}"
    return Subject(
        git_commit=f"{commit}-dirty" if dirty else commit,
        source_tree=f"{number:040x}"[::-1],
        model_version=f"model-{number}",
        model_sha256=f"{number:064x}"[::-1],
        digest=digest,
        image=f"127.0.0.1:5000/sentiment-api@{digest}",
    )


def evidence(
    store: EvidenceStore,
    gate: str,
    about: Subject,
    passed: bool = True,
    environment: str | None = None,
) -> dict:
    moment = utc_now()
    record = {
        "id": store.new_id(gate, about.key, moment),
        "gate": gate,
        "environment": environment or gate,
        "subject": about.as_record(),
        "result": "passed" if passed else "failed",
        "failures": [] if passed else [f"{gate}: made to fail"],
        "checks": [],
        "started_at": timestamp(moment),
    }
    store.append(record)
    return record


@dataclass
class FakeStages:
    store: EvidenceStore
    subjects: dict[str, Subject]
    # (environment, digest) pairs whose gate or smoke fails, or whose deploy fails.
    failing: set[tuple[str, str]] = field(default_factory=set)
    undeployable: set[str] = field(default_factory=set)
    running: dict[str, str] = field(default_factory=dict)
    calls: list[tuple[str, ...]] = field(default_factory=list)

    def subject(self, reference: str) -> Subject:
        self.calls.append(("subject", reference))
        return self.subjects[reference]

    def deploy(self, environment: str, reference: str) -> str:
        self.calls.append(("deploy", environment, reference))
        if reference in self.undeployable:
            self.running.pop(environment, None)
            raise NotReadyError(f"container for {reference} never became ready")
        self.running[environment] = reference
        return f"http://127.0.0.1/{environment}"

    def gate(self, environment: str, about: Subject, url: str) -> dict[str, Any]:
        self.calls.append(("gate", environment, about.digest))
        passed = (environment, about.digest) not in self.failing
        return evidence(self.store, environment, about, passed)

    def smoke(self, gate: str, environment: str, about: Subject, url: str) -> dict[str, Any]:
        self.calls.append(("smoke", gate, environment, about.digest))
        passed = (environment, about.digest) not in self.failing
        return evidence(self.store, gate, about, passed, environment)

    def deploy_failed(
        self, gate: str, environment: str, about: Subject, error: DeliveryError
    ) -> dict[str, Any]:
        self.calls.append(("deploy_failed", gate, environment, about.digest))
        return evidence(self.store, gate, about, passed=False, environment=environment)

    def remove(self, environment: str) -> None:
        self.calls.append(("remove", environment))
        self.running.pop(environment, None)
