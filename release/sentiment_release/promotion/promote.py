"""Promotion and rollback of one environment, under its lock, recorded in its ledger.

promote: check the ledger, the evidence, that the image is not older than the release
         (nothing changes on a refusal), record "deploying", deploy, run the gate, record
         the outcome. The record and entries are unsigned: this process runs the checks
         and holds no key. Then the signing step signs them (`sign`, a process of its own;
         on GitHub a step of its own), and only then, from the signed ledger: a release
         is tagged, or, where the policy says so, a failed gate is rolled back.
rollback: redeploy the previous release (an image of the configured repository that passed
          this environment's gate), check it with the rollback checks, record it; with
          nothing such to put back, refuse and leave what runs. Then it is signed.
"""

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from sentiment_release.delivery.errors import DeliveryError
from sentiment_release.delivery.records import ModelRef
from sentiment_release.delivery.targets import DeployTarget
from sentiment_release.gates.checks import Check
from sentiment_release.gates.evidence import ROLLBACK_GATE, EvidenceRecord
from sentiment_release.gates.evidence_store import EvidenceStore
from sentiment_release.gates.runner import GateRunner
from sentiment_release.gates.subject import Subject
from sentiment_release.promotion.ledger import DEPLOYING, FAILED, RELEASED, Ledger, LedgerEntry
from sentiment_release.promotion.policy import Policy
from sentiment_release.promotion.rules import (
    PromotionRefusedError,
    ReleaseTags,
    RollbackRefusedError,
    check_ledger,
    check_ledger_below,
    not_older_than_the_release,
    release_baseline,
    release_tag,
    required_evidence,
    rollback_image,
    vouched_image,
)
from sentiment_release.promotion.signing_step import Batch, SigningStep
from sentiment_release.support.clock import utc_now
from sentiment_release.support.errors import ReleaseError
from sentiment_release.support.provenance import actor


@dataclass
class Outcome:
    entry: LedgerEntry
    evidence: EvidenceRecord | None
    # What it wrote unsigned, for the signing step.
    unsigned: Batch = field(default_factory=Batch)
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
    # Signs an environment's unsigned records and entries, in a process of its own; None
    # where signing is a later step (GitHub: the key reaches only that step).
    sign: SigningStep | None = None
    # Raises when the state directory lost what the state branch holds (nothing then
    # relies on it).
    state_intact: Callable[[], None] = field(default=lambda: None)
    # What the operation under way has written unsigned, per environment.
    _batch: dict[str, Batch] = field(default_factory=dict, init=False)

    def promote(self, target: str, reference: str, given_tag: str | None = None) -> Outcome:
        environment = self.policy.environment(target)
        with self._operating(target):
            subject = self.subject_of(reference)
            check_ledger_below(self.policy, target, self.ledger, self.store)
            relied_on = required_evidence(self.policy, target, subject, self.store)
            not_older_than_the_release(target, subject, self.ledger, self.tags)
            tag = None
            if environment.requires_release_tag:
                tag = release_tag(self.policy, target, subject, given_tag, self.tags)
            self._preflight(target)
            self.log(f"{target}: deploying {subject.digest} (relying on {relied_on.id})")
            entry, evidence = self._deploy_and_check(
                "promote", target, subject, target, environment.gate,
                from_environment=relied_on.environment, relied_on=[relied_on.id],
                release_tag=tag, replaced=self.ledger.running(target),
            )  # fmt: skip
            unsigned = self._batch[target]
        outcome = Outcome(entry, evidence, unsigned)
        if self.sign is None:
            after = ("`sentiment registry tag-release` tags the release" if outcome.released
                     else f"`sentiment rollback {target} --if-gate-failed` applies its "
                     "on_gate_failure")  # fmt: skip
            self.log(f"{target}: its gate's evidence and ledger entries wait unsigned; "
                     f"`sentiment sign {target}` signs them, then {after}")  # fmt: skip
            return outcome
        if outcome.released and tag is not None:
            if self.tag_on_release:
                self._tag_release(outcome)
            else:
                self.log(f"{target}: `sentiment registry tag-release {target}` tags it")
        elif not outcome.released:
            try:
                outcome.rollback = self.rollback_if_gate_failed(target)
            except RollbackRefusedError as error:
                outcome.rollback_refused = str(error)
                self.log(f"{target}: NO ROLLBACK: {error}")
        return outcome

    def rollback_if_gate_failed(self, environment: str) -> "Outcome | None":
        """Where the policy says a failed gate rolls back (on_gate_failure), and the signed
        ledger's last entry is a promotion whose gate failed: the rollback (None
        otherwise). RollbackRefusedError when there is nothing to put back."""
        if self.policy.environment(environment).on_gate_failure != "rollback":
            return None
        with self._operating(environment):
            entries = self.ledger.entries(environment)
            last = entries[-1] if entries else None
            if last is None or last.event != "promote" or last.result != FAILED:
                return None
            self.log(f"{environment}: the gate failed; rolling back to the previous release")
            return self._restore(environment, automatic=True)

    @contextmanager
    def _operating(self, environment: str) -> Iterator[None]:
        """One promotion or rollback of `environment`: under its lock, once the state is
        ready; then, the lock released, what it wrote is signed (where this machine signs).
        When it ends in an exception after it wrote entries (a deploy may have happened),
        that is signed all the same: the ledger keeps the trace."""
        written = self._batch[environment] = Batch()
        try:
            with self.ledger.locked(environment, self.policy.lock_timeout_seconds):
                self._ready(environment)
                yield
        except BaseException:
            if not written.empty and self.sign is not None:
                try:
                    self.sign(environment, written)
                except Exception as error:  # the original failure is the one to report
                    self.log(f"{environment}: what the interrupted run wrote is unsigned: {error}")
            raise
        finally:
            self._batch.pop(environment, None)
        if not written.empty and self.sign is not None:
            self.sign(environment, written)

    def _preflight(self, environment: str) -> None:
        """Before anything is deployed: the checks can run isolated, and what will sign
        their evidence here would count."""
        self.gates.preflight()
        if self.sign is not None:
            self.sign.check(environment)

    def _ready(self, environment: str) -> None:
        """Refuses (changing nothing) unless the state is whole and `environment`'s ledger
        holds, with nothing left unsigned by an earlier run."""
        self.state_intact()
        if self.ledger.pending(environment):
            raise PromotionRefusedError(
                f"{environment} has ledger entries an earlier run left unsigned "
                f"({self.ledger.pending_path(environment)}): `sentiment sign {environment}` "
                "signs them if they hold together; until then nothing is promoted or rolled "
                "back there"
            )
        check_ledger(environment, self.ledger, self.store)

    def _tag_release(self, outcome: Outcome) -> None:
        """Tags the release, now signed, from the verified ledger. The release stands
        whatever happens here: the tag is its name for people and clients, not what runs.
        A failure is said loudly, and the command still exits 0."""
        try:
            outcome.registry_tag = self.tag_current_release(outcome.entry.environment)
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
            self._ready(environment)
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
        with self._operating(environment):
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
        self._preflight(environment)
        self.log(f"{environment}: rolling back to {subject.digest} (ledger #{target.sequence})")
        entry, evidence = self._deploy_and_check(
            "rollback", environment, subject, ROLLBACK_GATE, self.policy.rollback_gate,
            automatic=automatic, release_tag=target.release_tag,
            replaced=self.ledger.running(environment), restores=target.sequence,
        )  # fmt: skip
        return Outcome(entry, evidence, self._batch[environment])

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
        batch = self._batch[environment]
        _, head = self.ledger.append(**self._entry(event, environment, subject, DEPLOYING, None),
                                     **details)  # fmt: skip
        batch.entries.append(head)
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
        batch.records[evidence.id] = self.store.written[evidence.id]
        result = RELEASED if evidence.passed else FAILED
        entry, outcome_hash = self.ledger.append(
            **self._entry(event, environment, subject, result, evidence.id), **details
        )
        batch.entries.append(outcome_hash)
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
