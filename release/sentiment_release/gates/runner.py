"""Running a gate: an environment's checks (config/promotion.yaml) on one subject, and
the evidence record the run leaves. Which checks run where is the policy's business;
nothing here knows an environment by name.

A gate run never raises for a failed check: the failure is in the record it returns. The
record is left unsigned: the process that runs checks holds no key, and the signing
step (sentiment_release/promotion/signing_step.py) signs it in a process of its own.
"""

import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from sentiment.model import BundleError, LoadedBundle, ModelFolder
from sentiment_release.delivery.errors import DeliveryError
from sentiment_release.delivery.service_config import config_sha256
from sentiment_release.gates.checks import Baseline, Check, CheckResult, GateContext
from sentiment_release.gates.evidence import CheckRecord, EvidenceRecord
from sentiment_release.gates.evidence_store import EvidenceStore
from sentiment_release.gates.isolation import Isolation
from sentiment_release.gates.reference import REFERENCE_ENGINE, ReferenceModel
from sentiment_release.gates.subject import Subject, source_subject
from sentiment_release.support.clock import utc_now
from sentiment_release.support.git import Git
from sentiment_release.support.project import Project
from sentiment_release.support.provenance import actor, ci_run_url


@dataclass
class _Run:
    """One gate run under way: what it is about, its id, when it started, its results."""

    gate: str
    environment: str
    subject: Subject
    id: str
    started_at: datetime
    ledger_head: str | None
    started: float = field(default_factory=time.monotonic)
    results: list[tuple[Check | None, CheckResult]] = field(default_factory=list)


@dataclass
class GateRunner:
    store: EvidenceStore
    project: Project
    # The model an image's checks judge it against (sentiment_release/gates/reference.py), asked for
    # only when a check needs one.
    reference: ReferenceModel | None
    # The training data, for checks that rebuild the held-out split.
    data_dir: Callable[[], Path]
    # The key the gates present to an environment's service, where it asks for one.
    api_key: Callable[[str], str | None] = lambda environment: None
    # How checks run (sentiment_release/gates/isolation.py); by default as the trust policy says,
    # with this machine's keys covered.
    isolation: Isolation | None = None

    def __post_init__(self) -> None:
        if self.isolation is None:
            self.isolation = self.store.keyring.isolation()

    def run(
        self,
        gate: str,
        environment: str,
        subject: Subject,
        checks: Sequence[Check],
        url: str | None,
        bundle: Callable[[], LoadedBundle] | None = None,
        ledger_head: str | None = None,
        baseline: Callable[[str], Baseline | None] | None = None,
    ) -> EvidenceRecord:
        """Runs `checks` on `subject` (served at `url`, if deployed) and records the result.
        Without `bundle`, checks that need the model get the reference for the image
        (sentiment_release/gates/reference.py): never the image's own bundle.
        `ledger_head`: the hash of the ledger entry a promotion wrote before this gate.
        `baseline`: a check's figures on the current release, by check name."""
        run = self._start(gate, environment, subject, ledger_head)
        with tempfile.TemporaryDirectory(prefix="gate-") as scratch:
            context = GateContext(
                environment=environment,
                subject=subject,
                url=url,
                reports=self.store.reports_dir(run.id),
                evidence_root=self.store.root,
                project=self.project,
                bundle=bundle or (lambda: self._reference(subject, Path(scratch))),
                data_dir=self.data_dir,
                isolation=self.isolation,
                api_key=self.api_key,
                baseline=baseline or (lambda check: None),
            )
            run.results = [(check, check.run(context)) for check in checks]
        return self._record(run, url)

    def run_source_gate(
        self,
        environment: str,
        checks: Sequence[Check],
        registry: ModelFolder,
        version: str = "current",
    ) -> EvidenceRecord:
        """The first environment's gate: on the working tree and the model `version` of
        this machine's registry (the champion pulled by its digest, where one is pinned),
        before an image exists. Its evidence is bound to the tree's content and the model."""
        try:
            bundle = registry.load(version, REFERENCE_ENGINE)
        except BundleError as error:
            raise DeliveryError(
                f"the {environment} gate needs a current model ({error}); run `make train`"
            ) from None
        subject = source_subject(Git(self.project.root).source(), bundle.metadata)
        return self.run(environment, environment, subject, checks, None, lambda: bundle)

    def deploy_failed(
        self, gate: str, environment: str, subject: Subject, error: Exception, ledger_head: str
    ) -> EvidenceRecord:
        """The record of a gate that could not start because the deploy failed."""
        run = self._start(gate, environment, subject, ledger_head)
        check = CheckResult("deploy")
        check.fail(str(error))
        run.results = [(None, check)]
        return self._record(run, None)

    def preflight(self) -> None:
        """Fails before anything is deployed when the checks could not run isolated here."""
        assert self.isolation is not None
        self.isolation.preflight()

    def _start(
        self, gate: str, environment: str, subject: Subject, ledger_head: str | None
    ) -> _Run:
        started_at = utc_now()
        return _Run(gate, environment, subject, self.store.new_id(gate, subject.key, started_at),
                    started_at, ledger_head)  # fmt: skip

    def _record(self, run: _Run, url: str | None) -> EvidenceRecord:
        results = run.results
        failures = [f"{r.name}: {message}" for _, r in results for message in r.failures]
        try:
            config_hash = config_sha256(self.project.service_config_dir, run.environment)
        except DeliveryError:
            config_hash = None
        record = EvidenceRecord(
            id=run.id,
            gate=run.gate,
            environment=run.environment,
            subject=run.subject,
            url=url,
            config_sha256=config_hash,
            checked_from_commit=Git(self.project.root).revision(),
            started_at=run.started_at,
            finished_at=utc_now(),
            seconds=round(time.monotonic() - run.started, 1),
            result="passed" if results and not failures else "failed",
            checks=[
                CheckRecord(
                    name=result.name,
                    check=check.kind if check else None,
                    options=check.options.model_dump(mode="json") if check else {},
                    result="passed" if result.passed else "failed",
                    seconds=round(result.seconds, 2),
                    figures=result.figures,
                    failures=result.failures,
                    reports=result.reports,
                )
                for check, result in results
            ],
            failures=failures,
            reports_dir=str(self.store.reports_dir(run.id).relative_to(self.store.root)),
            actor=actor(),
            ci_run=ci_run_url(),
            ledger_head=run.ledger_head,
        )
        self.store.write_unsigned(record)
        return record

    def _reference(self, subject: Subject, scratch: Path) -> LoadedBundle:
        if self.reference is None:
            raise DeliveryError("judging an image's model needs the model repository")
        return self.reference(subject, scratch)
