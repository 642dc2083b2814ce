"""Promotion and rollback of one environment, under its lock, recorded in its ledger.

promote: check the evidence (nothing changes on a refusal), deploy, run the gate,
         record the outcome. In prod a failed gate rolls back at once.
rollback: redeploy the previous release, smoke-check it, record it.
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from delivery.errors import DeliveryError
from gates.evidence import EvidenceStore, timestamp, utc_now
from gates.runner import actor
from gates.subject import Subject
from promotion.ledger import FAILED, RELEASED, Ledger
from promotion.rules import PREVIOUS, release_tag, required_evidence


class Stages(Protocol):
    """What promotion does to the world; the real ones are in promotion.stages."""

    def subject(self, reference: str) -> Subject: ...

    def deploy(self, environment: str, reference: str) -> str:
        """Runs `reference` as `environment`; its URL."""

    def gate(self, environment: str, subject: Subject, url: str) -> dict[str, Any]: ...

    def smoke(self, gate: str, environment: str, subject: Subject, url: str) -> dict[str, Any]: ...

    def deploy_failed(
        self, gate: str, environment: str, subject: Subject, error: DeliveryError
    ) -> dict[str, Any]: ...

    def remove(self, environment: str) -> None: ...


@dataclass
class Outcome:
    entry: dict[str, Any]
    evidence: dict[str, Any] | None
    # In prod, the rollback a failed gate set off.
    rollback: "Outcome | None" = None

    @property
    def released(self) -> bool:
        return self.entry["result"] == RELEASED


@dataclass
class Promoter:
    stages: Stages
    store: EvidenceStore
    ledger: Ledger
    lock_timeout_seconds: float
    release_tag_pattern: str
    tags_on: Callable[[str], list[str]]
    commit_of: Callable[[str], str | None]
    log: Callable[[str], None] = field(default=lambda message: None)

    def promote(self, target: str, reference: str, given_tag: str | None = None) -> Outcome:
        with self.ledger.locked(target, self.lock_timeout_seconds):
            subject = self.stages.subject(reference)
            relied_on = required_evidence(target, subject, self.store)
            tag = None
            if target == "prod":
                tag = release_tag(
                    subject, given_tag, self.release_tag_pattern, self.tags_on, self.commit_of
                )
            current = self._current(target)
            self.log(f"{target}: deploying {subject.digest} (relying on {relied_on['id']})")
            evidence = self._deploy_and_check(target, subject, gate=target)
            entry = self.ledger.append(
                {
                    **self._entry("promote", target, subject, evidence),
                    "from_environment": PREVIOUS[target],
                    "relied_on": [relied_on["id"]],
                    "release_tag": tag,
                    "replaced": current,
                }
            )
            outcome = Outcome(entry, evidence)
            if not outcome.released and target == "prod":
                self.log("prod: the gate failed; rolling back to the previous release")
                outcome.rollback = self._restore(target, automatic=True)
            return outcome

    def rollback(self, environment: str) -> Outcome:
        with self.ledger.locked(environment, self.lock_timeout_seconds):
            return self._restore(environment, automatic=False)

    def _restore(self, environment: str, automatic: bool) -> Outcome:
        """Redeploys the rollback target and smoke-checks it (the lock is held)."""
        target = self.ledger.rollback_target(environment)
        if target is None and not automatic:
            raise DeliveryError(
                f"{environment} has no earlier release to roll back to "
                f"(see `sentiment history {environment}`)"
            )
        replaced = self._running(environment)
        if target is None:
            # A first release that fails in prod: nothing to go back to, so nothing runs.
            self.stages.remove(environment)
            entry = self.ledger.append(
                {
                    "event": "rollback", "environment": environment, "automatic": automatic,
                    "result": "removed", "digest": None, "image": None, "model": None,
                    "evidence": None, "replaced": replaced, "restores": None,
                    "actor": actor(), "at": timestamp(utc_now()),
                }
            )  # fmt: skip
            self.log(f"{environment}: no earlier release; the failed one was removed")
            return Outcome(entry, None)
        subject = self.stages.subject(target["image"])
        self.log(f"{environment}: rolling back to {subject.digest} (ledger #{target['sequence']})")
        evidence = self._deploy_and_check(environment, subject, gate="rollback")
        entry = self.ledger.append(
            {
                **self._entry("rollback", environment, subject, evidence),
                "automatic": automatic,
                "release_tag": target.get("release_tag"),
                "replaced": replaced,
                "restores": target["sequence"],
            }
        )
        return Outcome(entry, evidence)

    def _deploy_and_check(self, environment: str, subject: Subject, gate: str) -> dict[str, Any]:
        assert subject.image is not None
        try:
            url = self.stages.deploy(environment, subject.image)
        except DeliveryError as error:
            return self.stages.deploy_failed(gate, environment, subject, error)
        if gate == "rollback":
            return self.stages.smoke(gate, environment, subject, url)
        return self.stages.gate(environment, subject, url)

    def _entry(
        self, event: str, environment: str, subject: Subject, evidence: dict[str, Any]
    ) -> dict[str, Any]:
        return {
            "event": event,
            "environment": environment,
            "result": RELEASED if evidence["result"] == "passed" else FAILED,
            "digest": subject.digest,
            "image": subject.image,
            "git_commit": subject.git_commit,
            "model": {"version": subject.model_version, "sha256": subject.model_sha256},
            "evidence": evidence["id"],
            "actor": actor(),
            "at": timestamp(utc_now()),
        }

    def _current(self, environment: str) -> str | None:
        releases = self.ledger.releases(environment)
        return releases[-1]["digest"] if releases else None

    def _running(self, environment: str) -> str | None:
        entries = self.ledger.entries(environment)
        return entries[-1]["digest"] if entries else None
