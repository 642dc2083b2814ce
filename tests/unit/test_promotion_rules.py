"""Every way a promotion is refused, and what each one relies on when it is allowed."""

import pytest

from sentiment_release.promotion.ledger import LedgerEntry
from sentiment_release.promotion.rules import (
    PromotionRefusedError,
    RollbackRefusedError,
    release_candidate,
    release_tag,
    required_evidence,
    rollback_image,
)
from sentiment_release.support.clock import utc_now
from tests.conftest import make_evidence_store
from tests.unit.promotion_fakes import (
    FOUR_ENVIRONMENTS,
    REPOSITORY,
    FakeTags,
    evidence,
    policy_from,
    subject,
)

IMAGE = subject(1)
OTHER = subject(2)
POLICY = policy_from(FOUR_ENVIRONMENTS)


@pytest.fixture
def store(tmp_path):
    return make_evidence_store(tmp_path / "evidence")


def dev_evidence(store, about, passed=True):
    """The dev gate's record is about the tree and model, not about an image."""
    return evidence(store, "dev", about.model_copy(update={"digest": None, "image": None}), passed)


def refused(target, about, store) -> str:
    with pytest.raises(PromotionRefusedError) as raised:
        required_evidence(POLICY, target, about, store)
    return str(raised.value)


def test_dev_is_never_promoted_to(store):
    assert "its gate runs before an image exists" in refused("dev", IMAGE, store)


def test_test_needs_a_dev_gate_for_the_image_source_tree_and_model(store):
    assert "no dev gate evidence for source tree" in refused("test", IMAGE, store)
    dev_evidence(store, OTHER)
    assert "no dev gate evidence" in refused("test", IMAGE, store)
    record = dev_evidence(store, IMAGE)
    assert required_evidence(POLICY, "test", IMAGE, store).id == record.id


def test_same_tree_with_another_model_is_not_enough(store):
    dev_evidence(store, IMAGE.model_copy(update={"model_sha256": "f" * 64}))
    assert "no dev gate evidence" in refused("test", IMAGE, store)


def test_a_failed_dev_gate_refuses_with_its_reasons(store):
    dev_evidence(store, IMAGE, passed=False)
    message = refused("test", IMAGE, store)
    assert "latest dev gate" in message
    assert "made to fail" in message


def test_a_later_failure_withdraws_an_earlier_pass(store):
    evidence(store, "test", IMAGE, passed=True)
    evidence(store, "test", IMAGE, passed=False)
    assert "latest test gate" in refused("stage", IMAGE, store)


def test_stage_needs_the_test_gate_of_that_digest(store):
    evidence(store, "test", OTHER)
    assert f"no test gate evidence for image {IMAGE.digest}" in refused("stage", IMAGE, store)
    record = evidence(store, "test", IMAGE)
    assert required_evidence(POLICY, "stage", IMAGE, store).id == record.id


def test_prod_needs_stage_not_test(store):
    evidence(store, "test", IMAGE)
    assert "no stage gate evidence" in refused("prod", IMAGE, store)
    evidence(store, "stage", IMAGE)
    assert required_evidence(POLICY, "prod", IMAGE, store).gate == "stage"


def tag_for(about, given=None, tags=None, elsewhere=()):
    return release_tag(POLICY, "prod", about, given, FakeTags(tags or {}, set(elsewhere)))


def refused_tag(about, given=None, tags=None, elsewhere=()) -> str:
    with pytest.raises(PromotionRefusedError) as raised:
        tag_for(about, given, tags, elsewhere)
    return str(raised.value)


def test_prod_refuses_an_image_built_from_uncommitted_changes():
    assert "uncommitted changes" in refused_tag(subject(1, dirty=True), tags={"v1": "x"})


def test_prod_refuses_an_untagged_commit():
    assert "has no release tag matching 'v*'" in refused_tag(IMAGE, tags={"v1": OTHER.git_commit})


def test_prod_finds_the_highest_release_tag_on_the_commit():
    tags = {"v1.0.0": IMAGE.git_commit, "v1.1.0": IMAGE.git_commit}
    assert tag_for(IMAGE, tags=tags) == "v1.1.0"


def test_a_given_tag_must_match_the_pattern_exist_and_point_at_the_commit():
    assert "not a release tag" in refused_tag(IMAGE, "release-1", {"release-1": IMAGE.git_commit})
    assert "not a release tag" in refused_tag(IMAGE, "--v1", {"--v1": IMAGE.git_commit})
    assert "there is no tag 'v9'" in refused_tag(IMAGE, "v9")
    message = refused_tag(IMAGE, "v2", {"v2": OTHER.git_commit})
    assert "points at" in message
    assert IMAGE.git_commit[:12] in message
    assert tag_for(IMAGE, "v3", {"v3": IMAGE.git_commit}) == "v3"


def test_a_release_comes_from_the_release_branch():
    tags = {"v1": IMAGE.git_commit}
    message = refused_tag(IMAGE, "v1", tags, elsewhere={IMAGE.git_commit})
    assert f"commit {IMAGE.git_commit[:12]} is not on main" in message
    assert "not on main" in refused_tag(IMAGE, tags=tags, elsewhere={IMAGE.git_commit})


@pytest.mark.parametrize(
    "hostile",
    ["v1;touch pwned", "v$(id)", "v`id`", "v1 v2", "v1\nid", "v1~1", "v1^{/msg}", "--v1", "v'1"],
)
def test_a_release_tag_is_a_plain_name(hostile):
    assert "is not a release tag" in refused_tag(IMAGE, hostile, {hostile: IMAGE.git_commit})


def test_a_release_ships_the_newest_image_of_its_commit_that_passed_stage(store):
    commit = IMAGE.git_commit
    rebuilt = OTHER.model_copy(update={"git_commit": commit})  # the same commit built twice
    with pytest.raises(PromotionRefusedError, match="no image of commit"):
        release_candidate(POLICY, commit, "v1.0.0", store)
    evidence(store, "test", IMAGE)  # not stage
    evidence(store, "stage", IMAGE, passed=False)
    with pytest.raises(PromotionRefusedError, match=r"1 image\(s\) failed it"):
        release_candidate(POLICY, commit, "v1.0.0", store)

    evidence(store, "stage", IMAGE)
    assert release_candidate(POLICY, commit, "v1.0.0", store).subject.digest == IMAGE.digest
    evidence(store, "stage", rebuilt)
    assert release_candidate(POLICY, commit, "v1.0.0", store).subject.digest == rebuilt.digest
    evidence(store, "stage", rebuilt, passed=False)  # withdraws the rebuild's pass
    assert release_candidate(POLICY, commit, "v1.0.0", store).subject.digest == IMAGE.digest
    evidence(store, "stage", subject(3))  # another commit never counts
    assert release_candidate(POLICY, commit, "v1.0.0", store).subject.digest == IMAGE.digest


def ledger_entry(about, evidence_id, image=None):
    return LedgerEntry(
        sequence=2, event="promote", environment="prod", result="released",
        previous="0" * 64, digest=about.digest, image=image or about.image, model=None,
        evidence=evidence_id, actor="tester", at=utc_now(),
    )  # fmt: skip


def test_a_rollback_target_must_be_an_image_of_the_repository_that_prod_vouched_for(store):
    record = evidence(store, "prod", IMAGE)
    assert rollback_image("prod", ledger_entry(IMAGE, record.id), store, REPOSITORY) == IMAGE.image
    refusals = {
        "not an image of": ledger_entry(IMAGE, record.id, f"evil.example/x@{IMAGE.digest}"),
        "no passing prod gate vouches": ledger_entry(OTHER, record.id),
        "no evidence": ledger_entry(IMAGE, "20261127T000000000000Z-prod-000000000000"),
        "no earlier release": None,
    }
    for message, target in refusals.items():
        with pytest.raises(RollbackRefusedError, match=message):
            rollback_image("prod", target, store, REPOSITORY)
    staged = evidence(store, "stage", IMAGE)  # a pass, but not of prod
    with pytest.raises(RollbackRefusedError, match="no passing prod gate vouches"):
        rollback_image("prod", ledger_entry(IMAGE, staged.id), store, REPOSITORY)
