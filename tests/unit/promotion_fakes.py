"""Stand-ins for promotion: a deploy target that only records, a check kind the tests
script, tags, and policies written as YAML. The rules, the gate runner, evidence and
ledgers they drive are the real ones."""

import base64
import json
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import yaml
from securesystemslib.signer import CryptoSigner

from sentiment.model import ModelFolder
from sentiment_release.delivery.errors import DeliveryError, NotReadyError
from sentiment_release.delivery.records import DeploymentRecord
from sentiment_release.delivery.targets import EnvironmentStatus
from sentiment_release.gates.attestation import PAYLOAD_TYPE
from sentiment_release.gates.checks import Baseline, CheckResult, GateContext
from sentiment_release.gates.checks.base import Check, CheckOptions, register
from sentiment_release.gates.evidence import CheckRecord, EvidenceRecord
from sentiment_release.gates.evidence_store import EvidenceStore
from sentiment_release.gates.runner import GateRunner
from sentiment_release.gates.subject import Subject
from sentiment_release.promotion.ledger import Ledger
from sentiment_release.promotion.policy import Policy
from sentiment_release.promotion.promote import Promoter
from sentiment_release.promotion.signing_step import Batch, sign_pending
from sentiment_release.support.clock import utc_now
from sentiment_release.support.project import Project
from sentiment_release.support.signing import sign
from tests.conftest import FIXTURE_DATA, ROOT, make_evidence_store

REPOSITORY = "127.0.0.1:5000/sentiment-api"
# The digest FakeModelStore holds its one model under.
MODEL_DIGEST = "sha256:" + "cd" * 32


def subject(number: int, dirty: bool = False) -> Subject:
    digest = f"sha256:{number:064x}"
    commit = f"{number:040x}"
    return Subject(
        git_commit=f"{commit}-dirty" if dirty else commit,
        source_tree=f"{number:040x}"[::-1],
        model_version=f"model-{number}",
        model_sha256=f"{number:064x}"[::-1],
        digest=digest,
        image=f"{REPOSITORY}@{digest}",
    )


def evidence(
    store: EvidenceStore,
    gate: str,
    about: Subject,
    passed: bool = True,
    environment: str | None = None,
) -> EvidenceRecord:
    """A gate record written straight into the store, as an earlier gate run would."""
    moment = utc_now()
    result = "passed" if passed else "failed"
    record = EvidenceRecord(
        id=store.new_id(gate, about.key, moment),
        gate=gate,
        environment=environment or gate,
        subject=about,
        url=None,
        config_sha256=None,
        checked_from_commit="0" * 40,
        started_at=moment,
        finished_at=moment,
        seconds=0.0,
        result=result,
        checks=[
            CheckRecord(
                name="scripted",
                result=result,
                seconds=0,
                figures={},
                failures=[] if passed else ["made to fail"],
                reports=[],
            )
        ],
        failures=[] if passed else [f"{gate}: made to fail"],
        reports_dir=f"reports/{gate}",
        actor="tester",
        ci_run=None,
    )
    store.append(record, store.keyring.signer(record.environment))
    return record


def statement_of(store: EvidenceStore, evidence_id: str) -> dict:
    """The in-toto statement inside a stored record's envelope, unverified."""
    envelope = json.loads((store.root / f"{evidence_id}.json").read_bytes())
    return json.loads(base64.b64decode(envelope["payload"]))


def resign(
    store: EvidenceStore, evidence_id: str, statement: dict, signer: CryptoSigner | None = None
) -> None:
    """Replaces a stored record by `statement` signed with `signer` (by default the very
    key its gate trusts), as someone holding that key could."""
    gate = statement["predicate"]["gate"]
    if gate == "rollback":
        gate = statement["predicate"]["environment"]
    payload = json.dumps(statement).encode("utf-8")
    path = store.root / f"{evidence_id}.json"
    path.write_bytes(sign(payload, PAYLOAD_TYPE, signer or store.keyring.signer(gate)))


class ScriptedOptions(CheckOptions):
    # Whether it stands for a check of the deployed service (true) or of the source.
    needs_service: bool = True


@register
class Scripted(Check):
    """A check kind only the tests have: it passes unless its environment and the subject's
    digest are listed in FAILING, and it logs every run."""

    kind = "scripted"
    Options = ScriptedOptions
    FAILING: ClassVar[set[tuple[str, str | None]]] = set()
    # Run as the check runs, as a hostile check or one of its packages would act.
    MISCHIEF: ClassVar[list[Callable[[GateContext], None]]] = []
    RUNS: ClassVar[list[tuple[str, str, str | None, str | None]]] = []
    # What each run was given as its figures on the current release.
    BASELINES: ClassVar[list[Baseline | None]] = []

    @property
    def needs_service(self) -> bool:  # type: ignore[override]
        return self.options.needs_service

    def check(self, context: GateContext, result: CheckResult) -> None:
        key = (context.environment, context.subject.digest)
        self.RUNS.append((self.name, context.environment, context.subject.digest, context.url))
        result.figures["runs"] = len(self.RUNS)
        self.BASELINES.append(context.baseline(self.name))
        for act in self.MISCHIEF:
            act(context)
        if key in self.FAILING:
            result.fail(f"{self.name} made to fail in {context.environment}")


def reset_scripted() -> Iterator[None]:
    for kept in (Scripted.FAILING, Scripted.RUNS, Scripted.BASELINES, Scripted.MISCHIEF):
        kept.clear()
    yield
    for kept in (Scripted.FAILING, Scripted.RUNS, Scripted.BASELINES, Scripted.MISCHIEF):
        kept.clear()


@dataclass
class FakeTarget:
    """A deploy target that runs nothing: it remembers what runs where, and obeys a script."""

    kind = "fake"
    undeployable: set[str] = field(default_factory=set)
    # Deploying these stops the runner mid-deploy, as a killed CI job would.
    crash_on: set[str] = field(default_factory=set)
    running: dict[str, str] = field(default_factory=dict)
    calls: list[tuple[str, ...]] = field(default_factory=list)

    def describe(self) -> str:
        return "stand-in target"

    def deploy(self, environment: str, reference: str) -> DeploymentRecord:
        self.calls.append(("deploy", environment, reference))
        if reference in self.crash_on:
            raise KeyboardInterrupt
        if reference in self.undeployable:
            self.running.pop(environment, None)
            raise NotReadyError(f"container for {reference} never became ready")
        self.running[environment] = reference
        return DeploymentRecord.ready_now(
            environment,
            reference,
            "local",
            f"http://stand-in/{environment}",
            "0" * 64,
            None,
            started=time.monotonic(),
            replaced=False,
        )

    def remove(self, environment: str) -> bool:
        self.calls.append(("remove", environment))
        return self.running.pop(environment, None) is not None

    def status(self, environment: str) -> EnvironmentStatus:
        image = self.running.get(environment)
        return EnvironmentStatus(environment, "running" if image else "not deployed", image, "-")

    def close(self) -> None:
        pass


@dataclass
class FakeRegistryTags:
    """Release tags written into the registry, or a failure to write them."""

    written: dict[str, str] = field(default_factory=dict)  # REGISTRY/NAME:tag -> image
    failing: bool = False

    def __call__(self, image: str, tag: str) -> str:
        if self.failing:
            raise DeliveryError("the registry refused the tag")
        reference = f"{image.split('@')[0]}:{tag}"
        self.written[reference] = image
        return reference


@dataclass
class FakeTags:
    tags: dict[str, str] = field(default_factory=dict)  # tag -> commit
    # Commits that are not on the release branch.
    elsewhere: set[str] = field(default_factory=set)
    # (older, newer) pairs of commits, one before the other in history.
    before: set[tuple[str, str]] = field(default_factory=set)

    def is_on_branch(self, commit: str, branch: str, remote: str) -> bool:
        return commit not in self.elsewhere

    def is_ancestor(self, older: str, newer: str) -> bool:
        return (older, newer) in self.before

    def release_tags(self, commit: str, pattern: str) -> list[str]:
        from fnmatch import fnmatchcase

        found = [t for t, c in self.tags.items() if c == commit and fnmatchcase(t, pattern)]
        return sorted(found, reverse=True)

    def tag_commit(self, tag: str) -> str | None:
        return self.tags.get(tag)

    def create_tag(self, tag: str, commit: str) -> None:
        self.tags[tag] = commit


def policy_from(text: str) -> Policy:
    return Policy.model_validate(yaml.safe_load(text))


FOUR_ENVIRONMENTS = """
release_tag_pattern: "v*"
release_branch: main
lock_timeout_seconds: 0
state_branch: delivery-state
state_remote: origin
rollback_checks: {smoke: {check: scripted}}
environments:
  - name: dev
    port: 8001
    github_environment: dev
    checks: {unit: {check: scripted, needs_service: false}}
  - {name: test, port: 8002, github_environment: test, checks: {load: {check: scripted}}}
  - {name: stage, port: 8003, github_environment: stage, checks: {uat: {check: scripted}}}
  - name: prod
    port: 8004
    github_environment: production
    requires_release_tag: true
    on_gate_failure: rollback
    checks: {smoke: {check: scripted}}
"""


def make_promoter(
    tmp_path, policy: Policy, subjects: dict[str, Subject], tags: FakeTags | None = None
) -> Promoter:
    store = make_evidence_store(tmp_path / "evidence")
    ledger = Ledger(tmp_path / "ledger", store.keyring, tmp_path / "pending" / "ledger")
    return Promoter(
        policy=policy,
        target=FakeTarget(),
        gates=GateRunner(store, Project(ROOT), None, lambda: FIXTURE_DATA),
        subject_of=lambda reference: subjects[reference],
        store=store,
        ledger=ledger,
        tags=tags or FakeTags(),
        repository=REPOSITORY,
        tag_release=FakeRegistryTags(),
        sign=InProcessSigning(store, ledger),
    )


@dataclass
class InProcessSigning:
    """The signing step's own function, called in this process (the CLI runs it in a
    child process of its own): this machine's pair for the environment signs."""

    store: EvidenceStore
    ledger: Ledger
    signed: list[str] = field(default_factory=list)
    # Run after each signing (the CLI commits the state to its branch).
    then: Callable[[], object] = lambda: None

    def check(self, environment: str) -> None:
        self.store.keyring.check_local(environment)

    def __call__(self, environment: str, batch: Batch) -> None:
        signer = self.store.keyring.signer(environment)
        sign_pending(environment, signer, self.store, self.ledger, 0, batch)
        self.signed.append(environment)
        self.then()


class Detonator:
    """Unpickled, it leaves a file behind: the proof that something loaded it."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


class FakeModelStore:
    """The model repository holding one bundle under MODEL_DIGEST."""

    def __init__(self, registry: ModelFolder):
        self.registry = registry
        self.pulled: list[str] = []

    def metadata(self, digest):
        assert digest == MODEL_DIGEST
        return self.registry.metadata()

    def pull(self, digest, target: ModelFolder):
        self.pulled.append(digest)
        version = self.registry.current_version()
        shutil.copytree(self.registry.path_of(version), target.versions_dir / version)
        return target.metadata(version)


class FakeEngine:
    """An image whose /app/models is the directory given."""

    def __init__(self, models: Path):
        self.models = models

    def copy_from_image(self, reference, source, target):
        assert source == "/app/models"
        shutil.copytree(self.models, target, symlinks=True)  # as `podman cp` copies links
