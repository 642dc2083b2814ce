"""The pipeline as one object, end to end against stand-in targets: the repository's four
environments, five with a UAT environment, three without a test environment. Only the
policy differs between them; the rules, gate runner, evidence, ledgers and promoter are
the real ones."""

from pathlib import Path

import pytest

from sentiment.model import ModelFolder
from sentiment_release.delivery.records import BuildRecord
from sentiment_release.gates.runner import GateRunner
from sentiment_release.gates.subject import Subject
from sentiment_release.promotion.ledger import Ledger
from sentiment_release.promotion.pipeline import Pipeline
from sentiment_release.promotion.policy import Policy, load_policy
from sentiment_release.promotion.promote import Promoter
from sentiment_release.promotion.signing_step import Batch
from sentiment_release.support.git import Git
from sentiment_release.support.project import Project
from tests.conftest import FIXTURE_DATA, ROOT, make_evidence_store
from tests.unit.promotion_fakes import (
    FOUR_ENVIRONMENTS,
    FakeRegistryTags,
    FakeTags,
    FakeTarget,
    InProcessSigning,
    Scripted,
    policy_from,
    reset_scripted,
)

POLICIES = ROOT / "tests" / "fixtures" / "policies"
COMMIT = "c0ffee" * 6 + "c0ff"
DIGEST = "sha256:" + "5e" * 32
IMAGE = f"127.0.0.1:5000/sentiment-api@{DIGEST}"
_scripted = pytest.fixture(autouse=True)(reset_scripted)


class Stand:
    """A pipeline over stand-ins for training, the build and the deploy target."""

    def __init__(self, tmp_path: Path, policy: Policy, bundles_dir: Path, tags: FakeTags):
        self.policy = policy
        self.store = make_evidence_store(tmp_path / "evidence")
        self.ledger = Ledger(tmp_path / "ledger", self.store.keyring, tmp_path / "pending")
        self.signing = InProcessSigning(self.store, self.ledger)
        self.target = FakeTarget()
        self.tags = tags
        registry = ModelFolder(bundles_dir)
        metadata = registry.metadata()
        # The image carries what the first gate checked: this tree, this model.
        tree = Git(ROOT).source().tree
        self.subject = Subject(
            git_commit=COMMIT, source_tree=tree, model_version=metadata.version,
            model_sha256=metadata.sha256, digest=DIGEST, image=IMAGE,
        )  # fmt: skip
        self.built = BuildRecord(
            digest=DIGEST, image=IMAGE, tag="t", size_bytes=1, size_mb=0.1, size_budget_mb=300,
            labels={}, model={"version": metadata.version, "sha256": metadata.sha256},
            git_commit=COMMIT, git_dirty=False, source_tree=tree, version="0.2.0",
            base_image="b", engine="stand-in", built_at="2026-11-27T00:00:00Z",
            seconds={"image_build": 0, "push": 0, "total": 0},
        )  # fmt: skip
        runner = GateRunner(self.store, Project(ROOT), None, lambda: FIXTURE_DATA)
        self.registry_tags = FakeRegistryTags()
        self.promoter = Promoter(
            policy=policy, target=self.target, gates=runner,
            subject_of={IMAGE: self.subject}.__getitem__, store=self.store, ledger=self.ledger,
            tags=tags, repository=IMAGE.split("@")[0], tag_release=self.registry_tags,
            sign=self.signing,
        )  # fmt: skip
        first = policy.first

        def source_gate():
            record = runner.run_source_gate(first.name, first.gate, registry)
            self.signing(first.name, Batch({record.id: self.store.written[record.id]}))
            return record

        self.pipeline = Pipeline(
            policy=policy,
            champion=lambda: f"model {metadata.version}",
            source_gate=source_gate,
            build=lambda: self.built,
            promoter=self.promoter,
            tags=tags,
        )


def stand(tmp_path, trained_registry, policy, tags=None) -> Stand:
    return Stand(tmp_path, policy, trained_registry, tags or FakeTags())


@pytest.mark.parametrize(
    ("policy", "promoted"),
    [
        (policy_from(FOUR_ENVIRONMENTS), ["test", "stage", "prod"]),
        (load_policy(POLICIES / "five-environments.yaml"), ["test", "stage", "uat", "prod"]),
        (load_policy(POLICIES / "three-environments.yaml"), ["stage", "prod"]),
    ],
    ids=["four", "five", "three"],
)
def test_one_image_goes_all_the_way_whatever_the_environments(
    tmp_path, trained_registry, policy, promoted
):
    named = policy.release_tag_pattern == "release-*"  # a pattern local tags do not match
    tags = FakeTags({"release-1.0.0": COMMIT} if named else {})
    run = stand(tmp_path, trained_registry, policy, tags)
    report = run.pipeline.run()
    assert report.succeeded, report.table()
    assert [step.name for step in report.steps] == ["champion", "dev gate", "build", *promoted]
    assert run.target.running == dict.fromkeys(promoted, IMAGE)
    # Each environment relied on the gate of the one before it, for this image.
    for environment in promoted:
        deploying, entry = run.ledger.entries(environment)
        assert (deploying.result, deploying.digest) == ("deploying", DIGEST)
        previous = policy.previous(environment).name
        relied = run.store.get(entry.relied_on[0], previous)
        assert (entry.event, entry.result, entry.digest) == ("promote", "released", DIGEST)
        assert (entry.from_environment, relied.gate, relied.passed) == (previous, previous, True)
        own = run.store.get(entry.evidence, environment)
        assert (own.gate, own.url) == (environment, f"http://stand-in/{environment}")
    first = run.store.latest("dev", source_tree=run.subject.source_tree)
    assert first.subject.digest is None  # the dev gate saw a tree and a model, no image
    release = run.ledger.entries(promoted[-1])[-1].release_tag
    assert release == ("release-1.0.0" if named else f"v0.2.0-local.{COMMIT[:12]}")
    # The released digest got its release tag in the registry, and nothing else did.
    assert run.registry_tags.written == {f"{IMAGE.split('@')[0]}:{release}": IMAGE}
    assert report.markdown("Pipeline").count("✅") == len(report.steps)


def test_until_stops_before_the_release_environment(tmp_path, trained_registry):
    run = stand(tmp_path, trained_registry, load_policy(POLICIES / "five-environments.yaml"))
    report = run.pipeline.run(until="uat")
    assert report.succeeded
    assert [step.name for step in report.steps][-1] == "uat"
    assert run.ledger.entries("prod") == []
    assert run.tags.tags == {}  # no release tag was made


def test_a_failed_gate_stops_the_pipeline_there(tmp_path, trained_registry):
    run = stand(tmp_path, trained_registry, load_policy(POLICIES / "five-environments.yaml"))
    Scripted.FAILING.add(("uat", DIGEST))
    report = run.pipeline.run()
    assert not report.succeeded
    results = {step.name: step.result for step in report.steps}
    assert (results["stage"], results["uat"], results["prod"]) == ("passed", "failed", "not run")
    assert "acceptance made to fail in uat" in report.table()
    assert run.target.running["uat"] == IMAGE  # uat keeps it, marked failed
    assert run.ledger.entries("prod") == []


def test_a_refused_step_is_reported_as_refused(tmp_path, trained_registry):
    run = stand(tmp_path, trained_registry, load_policy(POLICIES / "three-environments.yaml"))
    report = run.pipeline.run()  # release-* tags only, and the commit has none
    assert [step.result for step in report.steps][-1] == "refused"
    assert "would not match release_tag_pattern 'release-*'" in report.steps[-1].detail
    assert run.target.running == {"stage": IMAGE}


def test_until_must_be_an_environment_that_is_promoted_to(tmp_path, trained_registry):
    run = stand(tmp_path, trained_registry, policy_from(FOUR_ENVIRONMENTS))
    with pytest.raises(Exception, match="'dev' is not promoted to"):
        run.pipeline.run(until="dev")


def test_a_failing_step_of_any_kind_is_reported_not_raised(tmp_path, trained_registry):
    from sentiment.model import BundleNotFoundError

    run = stand(tmp_path, trained_registry, policy_from(FOUR_ENVIRONMENTS))

    def no_model() -> str:
        raise BundleNotFoundError("model folder models has no current model")

    run.pipeline.champion = no_model
    report = run.pipeline.run()
    assert [(step.name, step.result) for step in report.steps][:2] == [
        ("champion", "failed"), ("dev gate", "not run"),
    ]  # fmt: skip
    assert "no current model" in report.steps[0].detail
