"""Promotion and rollback of one environment, under its lock, recorded in its ledger.

promote: check the evidence (nothing changes on a refusal), deploy, run the gate, record
         the outcome. Where the policy says so, a failed gate rolls back at once.
rollback: redeploy the previous release (an image of the configured repository that passed
          this environment's gate), check it with the rollback checks, record it; with
          nothing such to put back, refuse and leave what runs.
"""

from collections.abc import Callable
from dataclasses import dataclass, field

from delivery.errors import DeliveryError
from delivery.records import ModelRef
from delivery.targets import DeployTarget
from gates.checks import Check
from gates.evidence import EvidenceRecord
from gates.evidence_store import EvidenceStore
from gates.runner import GateRunner
from gates.subject import Subject
from promotion.ledger import FAILED, RELEASED, Ledger, LedgerEntry
from promotion.policy import ROLLBACK_GATE, Policy
from promotion.rules import (
    ReleaseTags,
    RollbackRefusedError,
    release_tag,
    required_evidence,
    rollback_image,
)
from support.clock import utc_now
from support.provenance import actor


@dataclass
class Outcome:
    entry: LedgerEntry
    evidence: EvidenceRecord | None
    # The rollback a failed gate set off, where the policy says so, or why there was none.
    rollback: "Outcome | None" = None
    rollback_refused: str | None = None

    @property
    def released(self) -> bool:
        return self.entry.released


@dataclass
class Promoter:
    policy: Policy
    target: DeployTarget
    gates: GateRunner
    # What an image reference is: its labels, read back (pulled by digest).
    subject_of: Callable[[str], Subject]
    store: EvidenceStore
    ledger: Ledger
    tags: ReleaseTags
    # REGISTRY/NAME of the images this promotes: a rollback puts back nothing else.
    repository: str
    log: Callable[[str], None] = field(default=lambda message: None)

    def promote(self, target: str, reference: str, given_tag: str | None = None) -> Outcome:
        environment = self.policy.environment(target)
        with self.ledger.locked(target, self.policy.lock_timeout_seconds):
            subject = self.subject_of(reference)
            relied_on = required_evidence(self.policy, target, subject, self.store)
            tag = None
            if environment.requires_release_tag:
                tag = release_tag(self.policy, target, subject, given_tag, self.tags)
            running = self.ledger.running(target)
            self.log(f"{target}: deploying {subject.digest} (relying on {relied_on.id})")
            evidence = self._deploy_and_check(target, subject, target, environment.gate)
            entry = self.ledger.append(
                **self._entry("promote", target, subject, evidence),
                from_environment=relied_on.environment,
                relied_on=[relied_on.id],
                release_tag=tag,
                replaced=running,
            )
            outcome = Outcome(entry, evidence)
            if not outcome.released and environment.on_gate_failure == "rollback":
                self.log(f"{target}: the gate failed; rolling back to the previous release")
                try:
                    outcome.rollback = self._restore(target, automatic=True)
                except RollbackRefusedError as error:
                    outcome.rollback_refused = str(error)
                    self.log(f"{target}: NO ROLLBACK: {error}")
            return outcome

    def rollback(self, environment: str) -> Outcome:
        self.policy.environment(environment)
        with self.ledger.locked(environment, self.policy.lock_timeout_seconds):
            return self._restore(environment, automatic=False)

    def _restore(self, environment: str, automatic: bool) -> Outcome:
        """Redeploys the rollback target and checks it (the lock is held). Only an image of
        the configured repository that a passing gate of this environment vouched for is
        put back; otherwise nothing changes (RollbackRefusedError): a rollback never
        removes what runs."""
        target = self.ledger.rollback_target(environment)
        image = rollback_image(environment, target, self.store, self.repository)
        assert target is not None
        replaced = self.ledger.running(environment)
        subject = self.subject_of(image)
        self.log(f"{environment}: rolling back to {subject.digest} (ledger #{target.sequence})")
        evidence = self._deploy_and_check(
            environment, subject, ROLLBACK_GATE, self.policy.rollback_gate
        )
        entry = self.ledger.append(
            **self._entry("rollback", environment, subject, evidence),
            automatic=automatic,
            release_tag=target.release_tag,
            replaced=replaced,
            restores=target.sequence,
        )
        return Outcome(entry, evidence)

    def _deploy_and_check(
        self, environment: str, subject: Subject, gate: str, checks: list[Check]
    ) -> EvidenceRecord:
        assert subject.image is not None
        try:
            deployment = self.target.deploy(environment, subject.image)
        except DeliveryError as error:
            return self.gates.deploy_failed(gate, environment, subject, error)
        return self.gates.run(gate, environment, subject, checks, deployment.url)

    def _entry(
        self, event: str, environment: str, subject: Subject, evidence: EvidenceRecord
    ) -> dict:
        return {
            "event": event,
            "environment": environment,
            "result": RELEASED if evidence.passed else FAILED,
            "digest": subject.digest,
            "image": subject.image,
            "git_commit": subject.git_commit,
            "model": ModelRef(version=subject.model_version, sha256=subject.model_sha256),
            "evidence": evidence.id,
            "actor": actor(),
            "at": utc_now(),
        }
