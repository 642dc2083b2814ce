"""Promotion and rollback against a stand-in target, with the real rules, gate runner,
evidence and ledger: what is deployed, checked and recorded."""

import json
import re

import pytest

from sentiment_release.promotion.ledger import PAYLOAD_TYPE as LEDGER_PAYLOAD
from sentiment_release.promotion.ledger import (
    LedgerTamperedError,
    PromotionBusyError,
    canonical,
    entry_hash,
)
from sentiment_release.promotion.rules import PromotionRefusedError, superseded
from sentiment_release.promotion.status import environments_status
from sentiment_release.support.errors import ReleaseError
from sentiment_release.support.signing import sign_detached
from tests.unit.promotion_fakes import (
    FOUR_ENVIRONMENTS,
    REPOSITORY,
    FakeTags,
    Scripted,
    evidence,
    make_promoter,
    policy_from,
    reset_scripted,
    subject,
)

A, B, C = subject(1), subject(2), subject(3)
POLICY = policy_from(FOUR_ENVIRONMENTS)
_scripted = pytest.fixture(autouse=True)(reset_scripted)


@pytest.fixture
def promoter(tmp_path):
    tags = FakeTags({f"v{n}": s.git_commit for n, s in enumerate((A, B, C), start=1)})
    return make_promoter(tmp_path, POLICY, {s.image: s for s in (A, B, C)}, tags)


def staged(promoter, *images):
    for image in images:
        evidence(promoter.store, "stage", image)


def results(promoter, environment="prod"):
    """The outcomes in the ledger (each follows its "deploying" entry)."""
    entries = promoter.ledger.entries(environment)
    assert all(e.result == "deploying" for e in entries[::2]), entries
    return [(e.event, e.result, e.digest) for e in entries[1::2]]


def test_a_promotion_deploys_gates_and_records_what_it_relied_on(promoter):
    relied = evidence(promoter.store, "test", A)
    outcome = promoter.promote("stage", A.image)
    assert outcome.released
    assert promoter.target.calls == [("deploy", "stage", A.image)]
    assert [("uat", "stage", A.digest, "http://stand-in/stage")] == Scripted.RUNS
    entry = outcome.entry
    assert entry.relied_on == [relied.id]
    assert entry.evidence == outcome.evidence.id
    assert (entry.from_environment, entry.environment) == ("test", "stage")
    assert (entry.model.version, entry.model.sha256) == (A.model_version, A.model_sha256)
    assert entry.actor
    record = promoter.store.get(entry.evidence, "stage")
    assert (record.gate, record.subject, record.url) == ("stage", A, "http://stand-in/stage")
    assert [(c.name, c.check) for c in record.checks] == [("uat", "scripted")]


def test_a_refused_promotion_changes_nothing(promoter):
    evidence(promoter.store, "test", A, passed=False)
    with pytest.raises(PromotionRefusedError):
        promoter.promote("stage", A.image)
    assert promoter.target.calls == []
    assert promoter.ledger.entries("stage") == []


def test_an_unknown_environment_is_refused_before_anything_happens(promoter):
    with pytest.raises(ReleaseError, match=r"'uat' is not an environment \(environments: dev"):
        promoter.promote("uat", A.image)
    assert promoter.target.calls == []


def test_a_failed_gate_is_recorded_left_running_and_blocks_the_next(promoter):
    evidence(promoter.store, "dev", A.model_copy(update={"digest": None, "image": None}))
    Scripted.FAILING.add(("test", A.digest))
    outcome = promoter.promote("test", A.image)
    assert not outcome.released
    assert outcome.rollback is None  # test keeps what failed, marked failed
    assert promoter.target.running["test"] == A.image
    assert results(promoter, "test") == [("promote", "failed", A.digest)]
    with pytest.raises(PromotionRefusedError, match=r"latest test gate .* failed"):
        promoter.promote("stage", A.image)
    # What runs is what failed: the next promotion records it as what it replaced.
    evidence(promoter.store, "dev", B.model_copy(update={"digest": None, "image": None}))
    assert promoter.promote("test", B.image).entry.replaced == A.digest


def test_a_deploy_failure_is_a_failed_gate_with_its_own_evidence(promoter):
    evidence(promoter.store, "test", A)
    promoter.target.undeployable.add(A.image)
    outcome = promoter.promote("stage", A.image)
    assert not outcome.released
    assert outcome.evidence.checks[0].name == "deploy"
    assert "never became ready" in outcome.evidence.failures[0]
    assert Scripted.RUNS == []


def test_a_failed_gate_rolls_back_where_the_policy_says(promoter):
    staged(promoter, A, B)
    assert promoter.promote("prod", A.image).released
    Scripted.FAILING.add(("prod", B.digest))
    outcome = promoter.promote("prod", B.image)
    assert not outcome.released
    assert outcome.rollback.released
    assert outcome.rollback.entry.automatic is True
    assert outcome.rollback.entry.restores == 2  # A's outcome, after its deploying entry
    assert promoter.target.running["prod"] == A.image
    assert results(promoter) == [
        ("promote", "released", A.digest),
        ("promote", "failed", B.digest),
        ("rollback", "released", A.digest),
    ]
    assert outcome.rollback.evidence.gate == "rollback"
    assert promoter.ledger.releases("prod")[-1].digest == A.digest


def test_a_failed_first_release_stays_and_says_there_was_no_rollback(promoter):
    """Nothing earlier to go back to: what runs is kept (never removed), loudly."""
    staged(promoter, A)
    Scripted.FAILING.add(("prod", A.digest))
    outcome = promoter.promote("prod", A.image)
    assert not outcome.released
    assert outcome.rollback is None
    assert "refusing to roll prod back: it has no earlier release" in outcome.rollback_refused
    assert promoter.target.running["prod"] == A.image
    assert ("remove", "prod") not in promoter.target.calls
    assert results(promoter) == [("promote", "failed", A.digest)]


def rechain(promoter, change, signer=None):
    """Rewrites prod's ledger as someone holding prod's key could: `change` edits the
    entries (dicts), then every `previous` is recomputed and every entry signed again
    (by `signer`, by default prod's own key), so chain and signatures hold. What is left
    to catch them is the evidence the entries name."""
    path = promoter.ledger.path("prod")
    signer = signer or promoter.store.keyring.signer("prod")
    entries = change([json.loads(line)["entry"] for line in path.read_text().splitlines()])
    lines, previous = [], None
    for number, entry in enumerate(entries, start=1):
        entry = {**entry, "sequence": number, "previous": previous}
        signatures = sign_detached(canonical(entry), LEDGER_PAYLOAD, signer)
        lines.append(json.dumps({"entry": entry, "signatures": signatures}))
        previous = entry_hash(entry)
    path.write_text("\n".join(lines) + "\n")


def first_release(**changes):
    """The first release's outcome entry (#2, after its "deploying" entry), changed."""
    return lambda entries: [entries[0], {**entries[1], **changes}, *entries[2:]]


@pytest.mark.parametrize(
    ("tamper", "refusal"),
    [
        (
            # Recomputing the chain does not help: the outcome no longer repeats its deploy,
            lambda p: rechain(p, first_release(image=f"evil.example/x@{A.digest}")),
            "entry #2 records another deploy than entry #1, the one its gate followed (image)",
        ),
        (
            # and when both are rewritten, its signed gate names the deploy's old hash.
            lambda p: rechain(p, lambda entries: [
                {**entry, "image": f"evil.example/x@{A.digest}"} if index < 2 else entry
                for index, entry in enumerate(entries)
            ]),
            "entry #2 (released, " + A.digest + ") is not what evidence",
        ),
        (
            lambda p: rechain(p, first_release(evidence=None)),
            "entry #2 names evidence that does not count",
        ),
        (
            lambda p: rechain(p, first_release(digest=C.digest, image=C.image)),
            f"which does not vouch for {C.digest}",
        ),
        (
            lambda p: rechain(p, lambda entries: entries[:2]),
            "no longer holds the entry that gate evidence",
        ),
        (
            lambda p: (p.store.root / f"{p.ledger.entries('prod')[1].evidence}.json").unlink(),
            "entry #2 names evidence that does not count (no evidence",
        ),
        (
            lambda p: p.ledger.path("prod").write_text(
                "\n".join(p.ledger.path("prod").read_text().splitlines()[:-1]) + "\n"
                + p.ledger.path("prod").read_text().splitlines()[1] + "\n"
            ),
            "(entry #2) does not follow the line before it",
        ),
        (
            lambda p: rechain(p, lambda entries: entries[:2], p.store.keyring.signer("stage")),
            "is signed by key",
        ),
    ],
    ids=["rechained foreign image", "rechained foreign deploy", "no evidence", "another digest",
         "truncated", "evidence gone", "a line replayed", "signed by another environment"],
)  # fmt: skip
def test_a_rollback_puts_back_only_a_verified_image_from_a_ledger_that_holds(
    promoter, tamper, refusal
):
    staged(promoter, A, B)
    promoter.promote("prod", A.image)
    promoter.promote("prod", B.image)
    tamper(promoter)
    calls = list(promoter.target.calls)
    with pytest.raises(ReleaseError, match=re.escape(refusal)):
        promoter.rollback("prod")
    assert promoter.target.calls == calls  # nothing deployed, nothing removed
    assert promoter.target.running["prod"] == B.image


def test_a_cut_ledger_blocks_promotion_too(promoter):
    staged(promoter, A, B)
    promoter.promote("prod", A.image)
    rechain(promoter, lambda entries: [])
    with pytest.raises(LedgerTamperedError, match="no longer holds the entry"):
        promoter.promote("prod", B.image)
    assert promoter.target.running["prod"] == A.image


def test_a_deploy_writes_deploying_first_and_the_gate_signs_that_entry(promoter):
    staged(promoter, A)
    promoter.target.undeployable.add(A.image)
    promoter.promote("prod", A.image)
    (deploying, deploying_hash), (outcome, _) = promoter.ledger.chain("prod")
    assert (deploying.result, deploying.evidence, deploying.digest) == ("deploying", None, A.digest)
    assert (outcome.result, outcome.previous) == ("failed", deploying_hash)
    assert promoter.store.get(outcome.evidence, "prod").ledger_head == deploying_hash


def test_a_runner_killed_mid_deploy_leaves_a_deploying_entry(promoter):
    staged(promoter, A, B)
    promoter.promote("prod", A.image)
    promoter.target.crash_on.add(B.image)
    with pytest.raises(KeyboardInterrupt):
        promoter.promote("prod", B.image)
    # The interrupted promotion signed what it wrote before it stopped.
    assert promoter.ledger.pending("prod") == []
    *_, last = promoter.ledger.entries("prod")
    assert (last.event, last.result, last.digest) == ("promote", "deploying", B.digest)
    # status says so: the new image may be running, unchecked.
    promoter.target.running["prod"] = B.image
    [prod] = [r for r in status(promoter) if r.found.environment == "prod"]
    assert prod.release == "#3 promote INTERRUPTED (its image runs, unchecked)"
    # The ledger still holds: a rollback restores A.
    assert promoter.ledger.rollback_target("prod").digest == A.digest
    assert promoter.rollback("prod").entry.digest == A.digest
    [prod] = [r for r in status(promoter) if r.found.environment == "prod"]
    assert prod.release == "#5 rollback, gate passed"  # after #4, its deploying entry


def status(promoter):
    return environments_status(promoter.policy, promoter.target, promoter.ledger, promoter.store)


def test_status_says_when_the_ledger_does_not_hold(promoter):
    staged(promoter, A)
    promoter.promote("prod", A.image)
    rechain(promoter, lambda entries: [])
    [prod] = [r for r in status(promoter) if r.found.environment == "prod"]
    assert prod.release == "LEDGER DOES NOT HOLD"
    assert "no longer holds the entry" in prod.ledger_problem
    assert prod.found.image == A.image  # what runs is still shown


def test_the_release_environment_records_the_release_tag(promoter):
    staged(promoter, A)
    assert promoter.promote("prod", A.image).entry.release_tag == "v1"
    staged(promoter, subject(4))
    with pytest.raises(PromotionRefusedError, match="has no release tag"):
        make_promoter(promoter.ledger.root.parent, promoter.policy,
                      {subject(4).image: subject(4)}).promote("prod", subject(4).image)  # fmt: skip


def test_manual_rollbacks_walk_back_through_releases(promoter):
    staged(promoter, A, B, C)
    for image in (A, B, C):
        promoter.promote("prod", image.image)
    assert promoter.rollback("prod").entry.digest == B.digest
    assert promoter.rollback("prod").entry.digest == A.digest
    assert promoter.target.running["prod"] == A.image
    with pytest.raises(ReleaseError, match="no earlier release"):
        promoter.rollback("prod")


def test_a_rollback_whose_check_fails_is_recorded_as_failed(promoter):
    staged(promoter, A, B)
    promoter.promote("prod", A.image)
    promoter.promote("prod", B.image)
    Scripted.FAILING.add(("prod", A.digest))
    outcome = promoter.rollback("prod")
    assert not outcome.released
    assert results(promoter)[-1] == ("rollback", "failed", A.digest)


def test_a_promotion_waits_for_the_lock_and_gives_up_untouched(promoter):
    staged(promoter, A)
    with promoter.ledger.locked("prod", timeout=0), pytest.raises(PromotionBusyError):
        promoter.promote("prod", A.image)
    assert promoter.target.calls == []
    assert promoter.ledger.entries("prod") == []


def test_an_older_commit_never_replaces_the_release_of_a_newer_one(promoter):
    staged(promoter, A, B, C)
    promoter.tags.before.add((A.git_commit, B.git_commit))  # A was merged before B
    assert promoter.promote("prod", B.image).released
    calls = list(promoter.target.calls)
    with pytest.raises(PromotionRefusedError, match=r"older than .* promotions only move "
                       r"forward: `sentiment rollback prod` goes back"):  # fmt: skip
        promoter.promote("prod", A.image)
    assert promoter.target.calls == calls
    assert results(promoter) == [("promote", "released", B.digest)]
    # Unrelated or newer commits still go ahead.
    assert promoter.promote("prod", C.image).released


def test_a_release_is_tagged_in_the_registry_and_a_failure_to_tag_is_loud_not_fatal(promoter):
    staged(promoter, A, B)
    outcome = promoter.promote("prod", A.image)
    assert outcome.registry_tag == f"{REPOSITORY}:v1"
    assert promoter.tag_release.written == {f"{REPOSITORY}:v1": A.image}
    promoter.tag_release.failing = True
    outcome = promoter.promote("prod", B.image)
    assert outcome.released  # prod runs B: the release stands
    assert outcome.registry_tag is None
    assert outcome.registry_tag_error == "the registry refused the tag"


def test_only_a_release_is_tagged(promoter):
    evidence(promoter.store, "test", A)
    assert promoter.promote("stage", A.image).registry_tag is None
    staged(promoter, B)
    Scripted.FAILING.add(("prod", B.digest))
    assert promoter.promote("prod", B.image).registry_tag is None
    assert promoter.tag_release.written == {}


@pytest.fixture
def tagged_later(promoter):
    """A promoter that leaves release tags to `tag_current_release` (GitHub's set-up)."""
    promoter.tag_on_release = False
    return promoter


def test_a_release_left_to_the_tag_job_is_tagged_from_the_verified_ledger(tagged_later):
    promoter = tagged_later
    staged(promoter, A, B)
    outcome = promoter.promote("prod", A.image)
    assert outcome.released
    assert (outcome.registry_tag, outcome.registry_tag_error) == (None, None)
    assert promoter.tag_release.written == {}
    assert promoter.tag_current_release("prod") == f"{REPOSITORY}:v1"
    assert promoter.tag_release.written == {f"{REPOSITORY}:v1": A.image}
    # After a failed release and its automatic rollback, the release is A's again.
    Scripted.FAILING.add(("prod", B.digest))
    assert promoter.promote("prod", B.image).rollback.released
    promoter.tag_release.written.clear()
    assert promoter.tag_current_release("prod") == f"{REPOSITORY}:v1"
    assert promoter.tag_release.written == {f"{REPOSITORY}:v1": A.image}


def test_only_a_current_release_is_tagged(tagged_later):
    promoter = tagged_later
    with pytest.raises(PromotionRefusedError, match="its last ledger entry is not a release"):
        promoter.tag_current_release("prod")
    staged(promoter, A)
    Scripted.FAILING.add(("prod", A.digest))
    promoter.promote("prod", A.image)  # failed, and nothing to roll back to
    with pytest.raises(PromotionRefusedError, match="its last ledger entry is not a release"):
        promoter.tag_current_release("prod")
    evidence(promoter.store, "test", B)
    promoter.promote("stage", B.image)
    with pytest.raises(PromotionRefusedError, match="entry #2 has no release tag"):
        promoter.tag_current_release("stage")
    assert promoter.tag_release.written == {}


@pytest.mark.parametrize(
    ("tamper", "refusal"),
    [
        (
            lambda p: rechain(p, first_release(image=f"evil.example/x@{A.digest}")),
            "entry #2 records another deploy than entry #1, the one its gate followed (image)",
        ),
        (
            lambda p: rechain(p, first_release(release_tag="v2")),
            "entry #2 records another deploy than entry #1, the one its gate followed "
            "(release_tag)",
        ),
        (
            lambda p: (p.store.root / f"{p.ledger.entries('prod')[1].evidence}.json").unlink(),
            "entry #2 names evidence that does not count (no evidence",
        ),
    ],
    ids=["foreign image", "another tag", "evidence gone"],
)  # fmt: skip
def test_a_tag_is_written_only_for_what_verified_evidence_released(tagged_later, tamper, refusal):
    promoter = tagged_later
    staged(promoter, A)
    promoter.promote("prod", A.image)
    tamper(promoter)
    with pytest.raises(ReleaseError, match=re.escape(refusal)):
        promoter.tag_current_release("prod")
    assert promoter.tag_release.written == {}


def test_an_image_is_superseded_where_a_newer_commit_runs_or_is_released(promoter):
    history = promoter.tags
    history.before |= {(A.git_commit, B.git_commit), (B.git_commit, C.git_commit),
                       (A.git_commit, C.git_commit)}  # fmt: skip
    ledger = promoter.ledger
    assert superseded("prod", A, None, ledger, history) is None  # nothing there yet
    assert superseded("prod", A, B, ledger, history) == (
        f"prod already runs image {B.digest} of commit {B.git_commit[:12]}, which follows "
        f"{A.git_commit[:12]} (image {A.digest}) on the branch: that newer commit goes on instead"
    )
    assert superseded("prod", C, B, ledger, history) is None  # the newer one goes ahead
    rebuilt = subject(1).model_copy(update={"digest": f"sha256:{'e' * 64}"})
    assert superseded("prod", rebuilt, A, ledger, history) is None  # a rebuild of one commit
    assert superseded("prod", A, subject(1, dirty=True), ledger, history) is None
    assert superseded("prod", subject(4), B, ledger, history) is None  # another line of history

    staged(promoter, B)
    promoter.promote("prod", B.image)
    why = superseded("prod", A, None, ledger, history)
    assert why.startswith(f"prod already has as its release image {B.digest}")
    assert superseded("stage", A, None, ledger, history) is None  # per environment


def released(promoter, image):
    """`image` through test, stage and prod, as a pipeline would take it."""
    evidence(promoter.store, "dev", image)
    for environment in ("test", "stage", "prod"):
        assert promoter.promote(environment, image.image).released, environment


def test_a_check_is_given_what_it_measured_on_the_current_release(promoter):
    evidence(promoter.store, "dev", A)
    promoter.promote("test", A.image)
    assert Scripted.BASELINES == [None]  # nothing released yet
    for environment in ("stage", "prod"):
        promoter.promote(environment, A.image)
    evidence(promoter.store, "dev", B)
    promoter.promote("test", B.image)
    baseline = Scripted.BASELINES[-1]
    a_test = promoter.store.latest("test", digest=A.digest)
    assert baseline.evidence == a_test.id
    assert baseline.release == "v1"
    assert baseline.figures == next(c.figures for c in a_test.checks if c.name == "load")


def test_the_baseline_follows_a_rollback_and_ignores_failed_evidence(promoter):
    released(promoter, A)
    released(promoter, B)
    promoter.rollback("prod")  # A runs again
    Scripted.FAILING.add(("test", C.digest))
    evidence(promoter.store, "dev", C)
    promoter.promote("test", C.image)
    assert Scripted.BASELINES[-1].evidence == promoter.store.latest("test", digest=A.digest).id
    # C's own failed test gate is never anyone's baseline; a passing one is.
    Scripted.FAILING.clear()
    promoter.promote("test", C.image)
    assert Scripted.BASELINES[-1].release == "v1"


def test_a_forged_prod_ledger_fails_the_check_instead_of_lowering_the_bar(promoter):
    released(promoter, A)
    rechain(promoter, first_release(image=f"evil.example/x@{A.digest}"))
    evidence(promoter.store, "dev", B)
    outcome = promoter.promote("test", B.image)
    assert not outcome.released
    [failure] = outcome.evidence.failures
    assert "load: could not run: " in failure
    assert "entry #2 records another deploy than entry #1" in failure


def test_a_later_rerun_of_the_release_never_becomes_its_baseline(promoter):
    released(promoter, A)
    relied_on = promoter.ledger.entries("stage")[-1].relied_on
    promoter.promote("test", A.image)  # the release through test again: a newer record
    assert promoter.store.latest("test", digest=A.digest).id not in relied_on
    evidence(promoter.store, "dev", B)
    promoter.promote("test", B.image)
    assert [Scripted.BASELINES[-1].evidence] == relied_on


def test_on_github_each_step_of_a_failed_release_is_its_own(promoter):
    """Where a later step signs (GitHub: the key reaches only that step), a promotion stops
    at its unsigned gate; the signing step signs what it said it wrote; then, from the
    signed ledger, the failed gate is rolled back; and that is signed in turn."""
    signing, promoter.sign = promoter.sign, None
    staged(promoter, A, B)
    signing("prod", promoter.promote("prod", A.image).unsigned)
    Scripted.FAILING.add(("prod", B.digest))
    failed = promoter.promote("prod", B.image)
    assert not failed.released
    assert failed.rollback is None  # not before its evidence is signed
    [prod] = [r for r in status(promoter) if r.found.environment == "prod"]
    assert prod.release == "2 ENTRIES UNSIGNED (sentiment sign prod)"
    with pytest.raises(PromotionRefusedError, match="left unsigned"):
        promoter.rollback_if_gate_failed("prod")
    signing("prod", failed.unsigned)
    rolled_back = promoter.rollback_if_gate_failed("prod")
    assert rolled_back.entry.automatic
    assert promoter.target.running["prod"] == A.image
    signing("prod", rolled_back.unsigned)
    assert results(promoter)[-1] == ("rollback", "released", A.digest)
    assert promoter.rollback_if_gate_failed("prod") is None  # the last entry is no failure
