"""Promotion and rollback of one environment, under its lock, recorded in its ledger.

promote: check the ledger, the evidence, that the image is not older than the release
         (nothing changes on a refusal), record
         "deploying", deploy, run the gate, record the outcome. Where the policy says so,
         a failed gate rolls back at once.
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
from gates.evidence import ROLLBACK_GATE, EvidenceRecord
from gates.evidence_store import EvidenceStore
from gates.runner import GateRunner
from gates.subject import Subject
from promotion.ledger import DEPLOYING, FAILED, RELEASED, Ledger, LedgerEntry
from promotion.policy import Policy
from promotion.rules import (
    PromotionRefusedError,
    ReleaseTags,
    RollbackRefusedError,
    check_ledger,
    not_older_than_the_release,
    release_baseline,
    release_tag,
    required_evidence,
    rollback_image,
    vouched_image,
)
from support.clock import utc_now
from support.errors import ReleaseError
from support.provenance import actor


@dataclass
class Outcome:
    entry: LedgerEntry
    evidence: EvidenceRecord | None
    # The rollback a failed gate set off, where the policy says so, or why there was none.
    rollback: "Outcome | None" = None
    rollback_refused: str | None = None
    # A release: its tag in the registry (REGISTRY/NAME:vX.Y.Z), or why there is none.
    registry_tag: str | None = None
    registry_tag_error: str | None = None

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
    # Names a released image in the registry: (image by digest, release tag) -> reference.
    tag_release: Callable[[str, str], str]
    log: Callable[[str], None] = field(default=lambda message: None)
    # False: a release is tagged afterwards by `tag_current_release`, run where a registry
    # write is allowed (on GitHub, a job of its own: the gates here run with a read token).
    tag_on_release: bool = True

    def promote(self, target: str, reference: str, given_tag: str | None = None) -> Outcome:
        environment = self.policy.environment(target)
        with self.ledger.locked(target, self.policy.lock_timeout_seconds):
            check_ledger(target, self.ledger, self.store)
            subject = self.subject_of(reference)
            relied_on = required_evidence(self.policy, target, subject, self.store)
            not_older_than_the_release(target, subject, self.ledger, self.tags)
            tag = None
            if environment.requires_release_tag:
                tag = release_tag(self.policy, target, subject, given_tag, self.tags)
            self.log(f"{target}: deploying {subject.digest} (relying on {relied_on.id})")
            entry, evidence = self._deploy_and_check(
                "promote", target, subject, target, environment.gate,
                from_environment=relied_on.environment, relied_on=[relied_on.id],
                release_tag=tag, replaced=self.ledger.running(target),
            )  # fmt: skip
            outcome = Outcome(entry, evidence)
            if outcome.released and tag is not None:
                if self.tag_on_release:
                    self._tag_release(outcome, subject, tag)
                else:
                    self.log(f"{target}: `sentiment registry tag-release {target}` tags it")
            if not outcome.released and environment.on_gate_failure == "rollback":
                self.log(f"{target}: the gate failed; rolling back to the previous release")
                try:
                    outcome.rollback = self._restore(target, automatic=True)
                except RollbackRefusedError as error:
                    outcome.rollback_refused = str(error)
                    self.log(f"{target}: NO ROLLBACK: {error}")
            return outcome

    def _tag_release(self, outcome: Outcome, subject: Subject, tag: str) -> None:
        """The release stands whatever happens here: the tag is its name for people and
        clients, not what runs. A failure is said loudly, and the command still exits 0."""
        assert subject.image is not None
        try:
            outcome.registry_tag = self.tag_release(subject.image, tag)
            self.log(f"{outcome.entry.environment}: tagged {subject.digest} {outcome.registry_tag}")
        except ReleaseError as error:
            outcome.registry_tag_error = str(error)
            self.log(f"{outcome.entry.environment}: RELEASED, NOT TAGGED IN THE REGISTRY: {error}")

    def tag_current_release(self, environment: str) -> str:
        """Tags `environment`'s current release in the registry with its release tag; the
        reference. Image and tag come from the verified ledger, never from the caller, so
        the job allowed to write to the registry has nothing to be talked into."""
        self.policy.environment(environment)
        refused = f"refusing to tag {environment}'s release"
        with self.ledger.locked(environment, self.policy.lock_timeout_seconds):
            check_ledger(environment, self.ledger, self.store)
            entries = self.ledger.entries(environment)
            releases = self.ledger.releases(environment)
            last = entries[-1] if entries else None
            if last is None or not last.released or last.digest != releases[-1].digest:
                raise PromotionRefusedError(
                    f"{refused}: its last ledger entry is not a release (see `sentiment "
                    f"history {environment}`)"
                )
            current = releases[-1]
            if current.release_tag is None:
                raise PromotionRefusedError(
                    f"{refused}: ledger entry #{current.sequence} has no release tag"
                )
            image = vouched_image(environment, current, self.store, self.repository, refused)
        tagged = self.tag_release(image, current.release_tag)
        self.log(f"{environment}: tagged {current.digest} {tagged}")
        return tagged

    def rollback(self, environment: str) -> Outcome:
        self.policy.environment(environment)
        with self.ledger.locked(environment, self.policy.lock_timeout_seconds):
            check_ledger(environment, self.ledger, self.store)
            return self._restore(environment, automatic=False)

    def _restore(self, environment: str, automatic: bool) -> Outcome:
        """Redeploys the rollback target and checks it (the lock is held). Only an image of
        the configured repository that a passing gate of this environment vouched for is
        put back; otherwise nothing changes (RollbackRefusedError): a rollback never
        removes what runs."""
        target = self.ledger.rollback_target(environment)
        image = rollback_image(environment, target, self.store, self.repository)
        assert target is not None
        subject = self.subject_of(image)
        self.log(f"{environment}: rolling back to {subject.digest} (ledger #{target.sequence})")
        entry, evidence = self._deploy_and_check(
            "rollback", environment, subject, ROLLBACK_GATE, self.policy.rollback_gate,
            automatic=automatic, release_tag=target.release_tag,
            replaced=self.ledger.running(environment), restores=target.sequence,
        )  # fmt: skip
        return Outcome(entry, evidence)

    def _deploy_and_check(
        self,
        event: str,
        environment: str,
        subject: Subject,
        gate: str,
        checks: list[Check],
        **details: object,
    ) -> tuple[LedgerEntry, EvidenceRecord]:
        """Writes the "deploying" entry, deploys, runs the gate (whose signed record names
        that entry's hash), and writes the outcome entry."""
        assert subject.image is not None
        _, head = self.ledger.append(**self._entry(event, environment, subject, DEPLOYING, None),
                                     **details)  # fmt: skip
        try:
            deployment = self.target.deploy(environment, subject.image)
        except DeliveryError as error:
            evidence = self.gates.deploy_failed(gate, environment, subject, error, head)
        else:
            evidence = self.gates.run(
                gate, environment, subject, checks, deployment.url, ledger_head=head,
                baseline=lambda check: release_baseline(
                    self.policy, self.ledger, self.store, self.repository, gate, check
                ),
            )  # fmt: skip
        result = RELEASED if evidence.passed else FAILED
        entry, _ = self.ledger.append(
            **self._entry(event, environment, subject, result, evidence.id), **details
        )
        return entry, evidence

    def _entry(
        self, event: str, environment: str, subject: Subject, result: str, evidence: str | None
    ) -> dict:
        return {
            "event": event,
            "environment": environment,
            "result": result,
            "digest": subject.digest,
            "image": subject.image,
            "git_commit": subject.git_commit,
            "model": ModelRef(version=subject.model_version, sha256=subject.model_sha256),
            "evidence": evidence,
            "actor": actor(),
            "at": utc_now(),
        }
