"""Promotion and rollback against stand-in stages: what is deployed, gated and recorded."""

import pytest

from gates.evidence import EvidenceStore
from promotion.ledger import Ledger
from promotion.promote import Promoter
from promotion.rules import PromotionRefusedError
from tests.unit.promotion_fakes import FakeStages, evidence, subject

A, B, C = subject(1), subject(2), subject(3)


@pytest.fixture
def store(tmp_path) -> EvidenceStore:
    return EvidenceStore(tmp_path / "evidence")


@pytest.fixture
def stages(store) -> FakeStages:
    return FakeStages(store, {s.image: s for s in (A, B, C)})


@pytest.fixture
def promoter(stages, store, tmp_path) -> Promoter:
    tags = {s.git_commit: [f"v{n}"] for n, s in enumerate((A, B, C), start=1)}
    return Promoter(
        stages=stages,
        store=store,
        ledger=Ledger(tmp_path / "ledger"),
        lock_timeout_seconds=0,
        release_tag_pattern="v*",
        tags_on=lambda commit: tags.get(commit, []),
        commit_of=lambda tag: None,
    )


def staged(store, *images):
    for image in images:
        evidence(store, "stage", image)


def results(promoter, environment="prod"):
    return [(e["event"], e["result"], e["digest"]) for e in promoter.ledger.entries(environment)]


def test_a_promotion_deploys_gates_and_records_what_it_relied_on(promoter, stages, store):
    relied = evidence(store, "test", A)
    outcome = promoter.promote("stage", A.image)
    assert outcome.released
    assert stages.calls[-2:] == [("deploy", "stage", A.image), ("gate", "stage", A.digest)]
    entry = outcome.entry
    assert entry["relied_on"] == [relied["id"]]
    assert entry["evidence"] == outcome.evidence["id"]
    assert (entry["from_environment"], entry["environment"]) == ("test", "stage")
    assert entry["model"] == {"version": A.model_version, "sha256": A.model_sha256}
    assert entry["actor"]
    assert entry["at"]


def test_a_refused_promotion_changes_nothing(promoter, stages, store):
    evidence(store, "test", A, passed=False)
    with pytest.raises(PromotionRefusedError):
        promoter.promote("stage", A.image)
    assert [call[0] for call in stages.calls] == ["subject"]
    assert promoter.ledger.entries("stage") == []
    assert stages.running == {}


def test_a_failed_test_gate_is_recorded_left_running_and_blocks_stage(promoter, stages, store):
    from dataclasses import replace

    evidence(store, "dev", replace(A, digest=None, image=None))
    stages.failing.add(("test", A.digest))
    outcome = promoter.promote("test", A.image)
    assert not outcome.released
    assert outcome.rollback is None
    assert stages.running["test"] == A.image  # marked failed, not hidden
    assert results(promoter, "test") == [("promote", "failed", A.digest)]
    with pytest.raises(PromotionRefusedError, match=r"latest test gate .* failed"):
        promoter.promote("stage", A.image)


def test_a_deploy_failure_is_a_failed_gate_with_its_own_evidence(promoter, stages, store):
    evidence(store, "test", A)
    stages.undeployable.add(A.image)
    outcome = promoter.promote("stage", A.image)
    assert not outcome.released
    assert ("deploy_failed", "stage", "stage", A.digest) in stages.calls
    assert outcome.evidence["result"] == "failed"


def test_a_failed_prod_gate_rolls_back_to_the_previous_release(promoter, stages, store):
    staged(store, A, B)
    assert promoter.promote("prod", A.image).released
    stages.failing.add(("prod", B.digest))
    outcome = promoter.promote("prod", B.image)
    assert not outcome.released
    assert outcome.rollback.released
    assert outcome.rollback.entry["automatic"] is True
    assert outcome.rollback.entry["restores"] == 1
    assert stages.running["prod"] == A.image
    assert results(promoter) == [
        ("promote", "released", A.digest),
        ("promote", "failed", B.digest),
        ("rollback", "released", A.digest),
    ]
    assert ("smoke", "rollback", "prod", A.digest) in stages.calls
    assert promoter.ledger.releases("prod")[-1]["digest"] == A.digest


def test_a_failed_first_prod_release_is_removed(promoter, stages, store):
    staged(store, A)
    stages.undeployable.add(A.image)
    outcome = promoter.promote("prod", A.image)
    assert outcome.rollback.entry["result"] == "removed"
    assert ("remove", "prod") in stages.calls
    assert "prod" not in stages.running


def test_prod_records_the_release_tag(promoter, store):
    staged(store, A)
    assert promoter.promote("prod", A.image).entry["release_tag"] == "v1"


def test_manual_rollbacks_walk_back_through_releases(promoter, stages, store):
    staged(store, A, B, C)
    for image in (A, B, C):
        promoter.promote("prod", image.image)
    assert promoter.rollback("prod").entry["digest"] == B.digest
    assert promoter.rollback("prod").entry["digest"] == A.digest
    assert stages.running["prod"] == A.image
    with pytest.raises(Exception, match="no earlier release"):
        promoter.rollback("prod")


def test_a_rollback_whose_smoke_fails_is_recorded_as_failed(promoter, stages, store):
    staged(store, A, B)
    promoter.promote("prod", A.image)
    promoter.promote("prod", B.image)
    stages.failing.add(("prod", A.digest))
    outcome = promoter.rollback("prod")
    assert not outcome.released
    assert results(promoter)[-1] == ("rollback", "failed", A.digest)


def test_a_promotion_waits_for_the_lock_and_gives_up_untouched(promoter, stages, store):
    from promotion.ledger import PromotionBusyError

    staged(store, A)
    with promoter.ledger.locked("prod", timeout=0), pytest.raises(PromotionBusyError):
        promoter.promote("prod", A.image)
    assert stages.calls == []
    assert promoter.ledger.entries("prod") == []
