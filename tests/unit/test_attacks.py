"""Every attack tried against the promotion chain, each on the real code paths (rules,
gate runner, evidence store, signed ledger, signing step, state branch), and refused:
prod keeps running what it ran, no release tag moves, and the refusal names the reason.

The scenario: release v1 (image A) runs in prod. Image W passed stage, then a later stage
gate on W failed, so W must not reach prod. Image X never ran in stage. Each attack tries
to get W or X into prod as release v2, or to rewrite what prod's ledger says.
"""

import base64
import hashlib
import json
import pickle
import shutil
import subprocess
import sys
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
from securesystemslib.signer import CryptoSigner

from sentiment_release.gates.checks import configure
from sentiment_release.gates.evidence import EvidenceRecord
from sentiment_release.gates.isolation import inside_sandbox
from sentiment_release.gates.reference import reference_bundle
from sentiment_release.gates.runner import GateRunner
from sentiment_release.promotion.ledger import entry_hash
from sentiment_release.promotion.state_branch import StateBranch
from sentiment_release.promotion.status import environments_status
from sentiment_release.support.clock import compact, timestamp, utc_now
from sentiment_release.support.errors import ReleaseError
from sentiment_release.support.project import Project
from tests.conftest import FIXTURE_DATA, ROOT, make_evidence_store
from tests.unit.promotion_fakes import (
    FOUR_ENVIRONMENTS,
    MODEL_DIGEST,
    Detonator,
    FakeEngine,
    FakeModelStore,
    FakeTags,
    Scripted,
    evidence,
    make_promoter,
    policy_from,
    reset_scripted,
    resign,
    statement_of,
    subject,
)

A, W, X = subject(1), subject(2), subject(3)
POLICY = policy_from(FOUR_ENVIRONMENTS)
_scripted = pytest.fixture(autouse=True)(reset_scripted)


class Chain:
    """A promoter over a state directory whose signing step commits to a state branch."""

    def __init__(self, tmp_path: Path):
        repository = tmp_path / "repository"
        subprocess.run(["git", "init", "-q", "-b", "main", str(repository)], check=True)
        subprocess.run(["git", "-C", str(repository), "-c", "user.name=t", "-c",
                        "user.email=t@t", "commit", "-q", "--allow-empty", "-m", "code"],
                       check=True)  # fmt: skip
        tags = FakeTags({"v1": A.git_commit, "v2": W.git_commit, "v3": X.git_commit})
        self.promoter = make_promoter(tmp_path, POLICY, {s.image: s for s in (A, W, X)}, tags)
        self.branch = StateBranch(repository, tmp_path, "delivery-state", "origin")
        self.promoter.sign.then = lambda: self.branch.save("signed")
        self.promoter.state_intact = self.branch.check_intact
        self.store, self.ledger = self.promoter.store, self.promoter.ledger
        self.target, self.tags = self.promoter.target, self.promoter.tag_release
        # v1: A through test and stage to prod.
        evidence(self.store, "test", A)
        self.promoter.promote("stage", A.image)
        assert self.promoter.promote("prod", A.image, "v1").released
        # W passed stage, then failed it.
        evidence(self.store, "test", W)
        self.passed = self.promoter.promote("stage", W.image).evidence
        Scripted.FAILING.add(("stage", W.digest))
        self.failed = self.promoter.promote("stage", W.image).evidence
        assert not self.failed.passed
        Scripted.FAILING.clear()
        self.prod_before = list(self.target.calls)
        self.tags_before = dict(self.tags.written)

    def path(self, record: EvidenceRecord) -> Path:
        return self.store.root / f"{record.id}.json"

    def refused(self, image, match: str, tag: str = "v2") -> str:
        """The promotion to prod is refused for the reason `match`; nothing changed."""
        with pytest.raises(ReleaseError, match=match) as raised:
            self.promoter.promote("prod", image.image, tag)
        self.unchanged()
        return str(raised.value)

    def unchanged(self) -> None:
        assert self.target.running["prod"] == A.image
        assert self.target.calls == self.prod_before
        assert self.tags.written == self.tags_before


@pytest.fixture
def chain(tmp_path) -> Chain:
    return Chain(tmp_path)


def newer_pass(chain: Chain, base: EvidenceRecord, minutes: int = 1) -> tuple[str, dict]:
    """W's failed stage record made a pass a little later: an id and its statement."""
    later = utc_now() + timedelta(minutes=minutes)
    forged_id = f"{compact(later)}-stage-{W.digest[7:19]}"
    statement = statement_of(chain.store, base.id)
    statement["predicate"].update(
        id=forged_id, result="passed", failures=[], checks=[],
        started_at=timestamp(later), finished_at=timestamp(later),
    )  # fmt: skip
    return forged_id, statement


def test_the_scenario_is_refused_as_it_stands(chain):
    chain.refused(W, f"the latest stage gate for image {W.digest} failed")


def test_unsigned_record(chain):
    forged_id, statement = newer_pass(chain, chain.failed)
    (chain.store.root / f"{forged_id}.json").write_text(json.dumps(statement["predicate"]))
    message = chain.refused(W, "the latest stage gate for image .* failed")
    assert "is not a DSSE envelope" in message


def test_foreign_key(chain):
    forged_id, statement = newer_pass(chain, chain.failed)
    resign(chain.store, forged_id, statement, CryptoSigner.generate_ed25519())
    assert "does not trust for stage" in chain.refused(W, "failed")


def test_edited_payload(chain):
    """The failure edited into a pass, its signature kept: it no longer verifies, and the
    stage ledger, which names it, stops holding."""
    path = chain.path(chain.failed)
    envelope = json.loads(path.read_text())
    statement = statement_of(chain.store, chain.failed.id)
    statement["predicate"].update(result="passed", failures=[])
    envelope["payload"] = base64.b64encode(json.dumps(statement).encode()).decode()
    path.write_text(json.dumps(envelope))
    chain.branch.lost = lambda: []  # even with no state branch to compare against
    chain.refused(W, "stage's ledger .* names evidence that does not count .* altered")


def test_replay_under_another_id(chain):
    """W's real pass copied under a newer id, to outrank the failure."""
    later = utc_now() + timedelta(minutes=1)
    replayed = chain.store.root / f"{compact(later)}-stage-{W.digest[7:19]}.json"
    replayed.write_bytes(chain.path(chain.passed).read_bytes())
    assert f"holds the record of {chain.passed.id}" in chain.refused(W, "failed")


def test_future_date(chain):
    """Signed with stage's own key, but dated ahead: it would outrank every real record."""
    forged_id, statement = newer_pass(chain, chain.failed, minutes=60 * 24)
    resign(chain.store, forged_id, statement)
    assert "dated in the future" in chain.refused(W, "failed")


def test_truncated_ledger(chain):
    path = chain.ledger.path("prod")
    path.write_text("".join(path.read_text().splitlines(keepends=True)[:1]))
    chain.refused(A, "lost what branch delivery-state holds: ledger/prod.jsonl", "v1")
    # Without the branch, a ledger cut before a signed gate's entry is still caught by it.
    path.write_text("")
    chain.branch.lost = lambda: []
    chain.refused(A, "no longer holds the entry that gate evidence", "v1")


def test_reordered_ledger(chain):
    path = chain.ledger.path("prod")
    first, second = path.read_text().splitlines(keepends=True)
    path.write_text(second + first)
    chain.branch.lost = lambda: []
    chain.refused(A, "does not follow the line before it", "v1")


def test_forged_append(chain):
    """A well-formed "deploying" line with its hash chained, signed by nobody: rollback
    and status would have taken W as running and A as the one to go back from."""
    path = chain.ledger.path("prod")
    line = json.loads(path.read_text().splitlines()[-1])
    forged = {**line["entry"], "sequence": 3, "result": "deploying", "digest": W.digest,
              "image": W.image, "evidence": None,
              "previous": chain.ledger.chain("prod")[-1][1]}  # fmt: skip
    with path.open("a") as handle:
        handle.write(json.dumps({"entry": forged, "signatures": line["signatures"]}) + "\n")
    chain.branch.lost = lambda: []
    with pytest.raises(ReleaseError, match=r"line 3 does not count: its signature .* altered"):
        chain.promoter.rollback("prod")
    chain.unchanged()
    [prod] = [r for r in environments_status(POLICY, chain.target, chain.ledger, chain.store)
              if r.found.environment == "prod"]  # fmt: skip
    assert prod.release == "LEDGER DOES NOT HOLD"


def test_pruned_failure(chain):
    """The failing stage record deleted and stage's ledger cut back before it: what is
    left is signed and consistent, and only the state branch remembers. It does."""
    chain.path(chain.failed).unlink()
    path = chain.ledger.path("stage")
    path.write_text("".join(path.read_text().splitlines(keepends=True)[:4]))
    message = chain.refused(W, "lost what branch delivery-state holds")
    assert f"evidence/{chain.failed.id}.json (removed)" in message
    assert "ledger/stage.jsonl (cut or rewritten)" in message
    chain.branch.restore()  # the way back puts the failure back too
    chain.refused(W, f"the latest stage gate for image {W.digest} failed")


def test_cross_gate_key(chain):
    """X never ran in stage: a stage record for it signed with the dev key (which every
    dev and test job holds), claiming environment dev, vouches for nothing."""
    record = evidence(chain.store, "stage", X)
    statement = statement_of(chain.store, record.id)
    statement["predicate"]["environment"] = "dev"
    resign(chain.store, record.id, statement, chain.store.keyring.signer("dev"))
    chain.branch.lost = lambda: []
    message = chain.refused(X, f"no stage gate evidence for image {X.digest}", "v3")
    assert "does not trust for stage" in message


def fail_stage_again(chain: Chain, *mischief) -> None:
    """W's stage gate runs again and fails, while a check of it does `mischief`."""
    Scripted.FAILING.add(("stage", W.digest))
    Scripted.MISCHIEF.extend(mischief)
    try:
        assert not chain.promoter.promote("stage", W.image).released
    finally:
        Scripted.FAILING.clear()
        Scripted.MISCHIEF.clear()
        chain.prod_before = list(chain.target.calls)


def pending(context) -> Path:
    return context.evidence_root.parent / "pending" / "evidence"


def planted_pass(context, about=W) -> EvidenceRecord:
    """A passing stage record for `about`, newer than the run under way."""
    later = utc_now() + timedelta(seconds=5)
    return _record(context, about, f"{compact(later)}-stage-{about.digest[7:19]}", later)


def _record(context, about, evidence_id, moment) -> EvidenceRecord:
    return EvidenceRecord(
        id=evidence_id, gate="stage", environment="stage", subject=about, url=None,
        config_sha256=None, checked_from_commit="0" * 40, started_at=moment,
        finished_at=moment, seconds=0.0, result="passed", checks=[], failures=[],
        reports_dir="reports/x", actor="a check", ci_run=None,
    )  # fmt: skip


def test_a_record_planted_among_the_unsigned_is_never_signed(chain):
    """A check writes a newer stage pass for W where unsigned records wait: the signing
    step signs what the run said it wrote, and nothing else."""

    def plant(context):
        record = planted_pass(context)
        (pending(context) / f"{record.id}.json").write_text(record.to_json())

    fail_stage_again(chain, plant)
    assert chain.store.unsigned("stage")  # there, and unsigned for good
    chain.refused(W, f"the latest stage gate for image {W.digest} failed")


def test_a_run_s_own_id_taken_before_it_writes_its_record(chain):
    """The check knows the run's id (its reports folder is named after it) and writes a
    pass under it first: the run fails to write, and what it signs is its deploy only."""

    def squat(context):
        record = _record(context, W, context.reports.name, utc_now())
        (pending(context) / f"{record.id}.json").write_text(record.to_json())

    with pytest.raises(ReleaseError, match="exists already"):
        fail_stage_again(chain, squat)
    *_, last = chain.ledger.entries("stage")
    assert (last.result, last.digest) == ("deploying", W.digest)  # the trace, signed
    chain.branch.lost = lambda: []
    chain.refused(W, f"the latest stage gate for image {W.digest} failed")


def test_junk_among_the_unsigned_does_not_keep_a_failure_from_being_signed(chain):
    def litter(context):
        (pending(context) / "garbage.json").write_text("{not json")
        (pending(context) / f"{compact(utc_now())}-stage-{W.digest[7:19]}.json").write_text("[]")
        ledger = context.evidence_root.parent / "pending" / "ledger" / "stage.jsonl"
        with ledger.open("a") as handle:
            handle.write("{not json\n")

    fail_stage_again(chain, litter)
    latest = chain.store.latest("stage", digest=W.digest)
    assert latest is not None  # the failure was signed all the same
    assert not latest.passed


def test_an_entry_planted_among_the_unsigned_is_never_signed(chain):
    """A well-chained "deploying X" entry written while the gate runs: not the run's,
    so not signed (and gone with the run's unsigned file once it is signed)."""

    def plant(context):
        path = context.evidence_root.parent / "pending" / "ledger" / "stage.jsonl"
        deploying = json.loads(path.read_text().splitlines()[-1])
        forged = {**deploying, "sequence": deploying["sequence"] + 1, "digest": X.digest,
                  "image": X.image, "previous": entry_hash(deploying)}  # fmt: skip
        with path.open("a") as handle:
            handle.write(json.dumps(forged) + "\n")

    fail_stage_again(chain, plant)
    assert X.digest not in [entry.digest for entry in chain.ledger.entries("stage")]
    assert chain.ledger.pending("stage") == []
    chain.refused(W, f"the latest stage gate for image {W.digest} failed")


SNOOP = """
import glob, os, sys
print("ENV", sorted(os.environ))
for value in os.environ.values():
    if "PRIVATE KEY" in value:
        print("FOUND KEY IN ENVIRONMENT")
processes = glob.glob("/proc/[0-9]*/environ") + glob.glob("/proc/*/root" + sys.argv[1])
for path in sys.argv[1:] + processes:
    try:
        content = open(path, "rb").read()
    except OSError as error:
        print("DENIED", path, type(error).__name__)
        continue
    print("READ", path, "PRIVATE KEY" in content.decode(errors="replace"))
"""


def test_key_in_a_check_s_environment(tmp_path, monkeypatch):
    """A check that dumps its environment and tries every key path the project knows,
    run by the real gate runner while the gate's own environment holds a key and this
    machine keeps its pairs: it finds nothing."""
    if inside_sandbox():
        pytest.skip("run by a gate's check: the sandbox around it hides this machine's keys, "
                    "and a sandbox cannot start another")  # fmt: skip
    store = make_evidence_store(tmp_path / "evidence")
    keys = store.keyring.local_dir
    monkeypatch.setenv("EVIDENCE_SIGNING_KEY", (keys / "stage.pem").read_text())
    monkeypatch.setenv("GIT_TOKEN", "a-token")
    snoop = tmp_path / "snoop.py"
    snoop.write_text(SNOOP)
    paths = [str(path) for path in sorted(keys.glob("*"))]
    check = configure("snoop", {"check": "commands", "commands": [[sys.executable, str(snoop),
                                                                   *paths]]})  # fmt: skip
    isolation = replace(store.keyring.isolation(), readable=(snoop,))
    runner = GateRunner(store, Project(ROOT), None, lambda: FIXTURE_DATA, isolation=isolation)
    record = runner.run("stage", "stage", subject(1), [check], None)
    assert record.passed, record.failures
    log = (store.reports_dir(record.id) / "snoop.log").read_text()
    output = log.split("\n", 1)[1]  # the command line names the paths; the rest is the check's
    for found in ("PRIVATE KEY", "FOUND KEY", "EVIDENCE_SIGNING_KEY", "GIT_TOKEN", " True"):
        assert found not in output
    for path in paths:  # hidden: not even there
        assert f"DENIED {path} FileNotFoundError" in output


def test_pickle_in_the_image_under_test(registry_copy, tmp_path):
    """An image whose model file runs code when unpickled, its own metadata vouching for
    it: the gate compares its files with the model repository's and never loads them."""
    image_models = tmp_path / "image-models"
    shutil.copytree(registry_copy.root, image_models)
    marker = tmp_path / "pwned"
    version = registry_copy.current_version()
    model_file = image_models / "versions" / version / "model.joblib"
    model_file.write_bytes(pickle.dumps(Detonator(marker)))
    metadata = json.loads((image_models / "versions" / version / "metadata.json").read_text())
    metadata["sha256"] = hashlib.sha256(model_file.read_bytes()).hexdigest()
    (image_models / "versions" / version / "metadata.json").write_text(json.dumps(metadata))
    store = make_evidence_store(tmp_path / "evidence")
    runner = GateRunner(
        store, Project(ROOT),
        lambda subject, scratch: reference_bundle(
            subject, FakeModelStore(registry_copy), FakeEngine(image_models), scratch
        ),
        lambda: FIXTURE_DATA,
    )  # fmt: skip
    image = subject(4).model_copy(update={
        "model_sha256": registry_copy.metadata().sha256, "model_digest": MODEL_DIGEST,
    })  # fmt: skip
    quality = configure("quality", {"min_accuracy": 0, "min_f1": 0, "min_roc_auc": 0})
    record = runner.run("stage", "stage", image, [quality], "http://stand-in/stage")
    assert not record.passed
    assert "does not carry model" in record.failures[0]
    assert "model.joblib is not the same" in record.failures[0]
    assert not marker.exists()


LINKER = """
import glob, os, sys
target = sys.argv[1]
for folder in glob.glob(sys.argv[2] + "/reports/*/"):
    log = os.path.join(folder, "escape.log")
    os.remove(log)
    os.symlink(target, log)
print("linked")
sys.exit(1)
"""


@pytest.mark.parametrize("to", ["key", "code"])
def test_a_link_in_a_check_s_reports_folder(tmp_path, to):
    """The one place a check may write is its reports folder, which the gate then reads
    and appends to: a log replaced by a link to a key (or to a file the signing step will
    load) makes the gate read or write nothing through it."""
    if inside_sandbox():
        pytest.skip("run by a gate's check: the sandbox around it holds, and cannot nest")
    store = make_evidence_store(tmp_path / "evidence")
    key = store.keyring.local_dir / "stage.pem"
    planted = tmp_path / "planted.pth"
    planted.write_text("")
    linker = tmp_path / "linker.py"
    linker.write_text(LINKER)
    target = key if to == "key" else planted
    commands = [
        [sys.executable, str(linker), str(target), str(store.root)],
        [sys.executable, "-c", "print('import os; os.system(\"touch /tmp/pwned\")')"],
    ]
    check = configure("escape", {"check": "commands", "commands": commands})
    isolation = replace(store.keyring.isolation(), readable=(tmp_path,))
    runner = GateRunner(store, Project(ROOT), None, lambda: FIXTURE_DATA, isolation=isolation)
    record = runner.run("stage", "stage", subject(1), [check], None)
    assert not record.passed
    said = "\n".join(record.failures)
    assert "PRIVATE KEY" not in said
    assert "cannot be read" in said  # its log, through the link, is refused
    assert "is not a file of its own" in said or "Too many levels" in said  # never written
    assert "PRIVATE KEY" in key.read_text()  # the key itself untouched
    assert planted.read_text() == ""
