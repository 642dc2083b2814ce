"""Promotion and rollback of one environment, under its lock, recorded in its ledger.

promote: check the evidence (nothing changes on a refusal), deploy, run the gate, record
         the outcome. Where the policy says so, a failed gate rolls back at once.
rollback: redeploy the previous release, check it with the rollback checks, record it.
"""

from collections.abc import Callable
from dataclasses import dataclass, field

from delivery.errors import DeliveryError
from delivery.records import ModelRef
from delivery.targets import DeployTarget
from gates.checks import Check
from gates.evidence import EvidenceRecord, EvidenceStore
from gates.runner import GateRunner
from gates.subject import Subject
from promotion.ledger import FAILED, RELEASED, REMOVED, Ledger, LedgerEntry
from promotion.policy import ROLLBACK_GATE, Policy
from promotion.rules import ReleaseTags, release_tag, required_evidence
from support.clock import utc_now
from support.provenance import actor


@dataclass
class Outcome:
    entry: LedgerEntry
    evidence: EvidenceRecord | None
    # The rollback a failed gate set off, where the policy says so.
    rollback: "Outcome | None" = None

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
                outcome.rollback = self._restore(target, automatic=True)
            return outcome

    def rollback(self, environment: str) -> Outcome:
        self.policy.environment(environment)
        with self.ledger.locked(environment, self.policy.lock_timeout_seconds):
            return self._restore(environment, automatic=False)

    def _restore(self, environment: str, automatic: bool) -> Outcome:
        """Redeploys the rollback target and checks it (the lock is held)."""
        target = self.ledger.rollback_target(environment)
        if target is None and not automatic:
            raise DeliveryError(
                f"{environment} has no earlier release to roll back to "
                f"(see `sentiment history {environment}`)"
            )
        replaced = self.ledger.running(environment)
        if target is None:
            # A first release that fails: nothing to go back to, so nothing runs.
            self.target.remove(environment)
            entry = self.ledger.append(
                event="rollback", environment=environment, automatic=automatic,
                result=REMOVED, digest=None, image=None, model=None, evidence=None,
                replaced=replaced, restores=None, actor=actor(), at=utc_now(),
            )  # fmt: skip
            self.log(f"{environment}: no earlier release; the failed one was removed")
            return Outcome(entry, None)
        assert target.image is not None
        subject = self.subject_of(target.image)
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
