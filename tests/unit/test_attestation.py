"""Gate evidence as signed in-toto attestations: what a record is on disk, and every way a
forged, altered or misdirected one is refused, with the reason it gives."""

import base64
import json
from datetime import timedelta

import pytest
from securesystemslib.signer import CryptoSigner

from sentiment_release.gates.attestation import PAYLOAD_TYPE, UntrustedEvidenceError, gate_named_in
from sentiment_release.gates.evidence_store import EvidenceStore
from sentiment_release.promotion.rules import (
    PromotionRefusedError,
    release_candidate,
    required_evidence,
)
from sentiment_release.support.clock import compact, timestamp, utc_now
from sentiment_release.support.errors import ReleaseError
from sentiment_release.support.signing import sign
from tests.conftest import make_evidence_store, make_keyring
from tests.unit.promotion_fakes import (
    FOUR_ENVIRONMENTS,
    evidence,
    policy_from,
    resign,
    statement_of,
    subject,
)

IMAGE = subject(1)
POLICY = policy_from(FOUR_ENVIRONMENTS)


@pytest.fixture
def store(tmp_path) -> EvidenceStore:
    return make_evidence_store(tmp_path / "evidence")


def refusal(store: EvidenceStore, evidence_id: str) -> str:
    with pytest.raises(UntrustedEvidenceError) as raised:
        store.get(evidence_id, gate_named_in(evidence_id))
    assert [found.id for found in store.rejected()] == [evidence_id]
    assert evidence_id not in [record.id for record in store.records()]
    return str(raised.value)


def test_a_record_is_an_in_toto_statement_about_the_digest_in_a_signed_envelope(store):
    record = evidence(store, "stage", IMAGE)
    envelope = json.loads((store.root / f"{record.id}.json").read_bytes())
    assert envelope["payloadType"] == PAYLOAD_TYPE
    [signature] = envelope["signatures"]
    assert signature["keyid"] == store.keyring.signer("stage").public_key.keyid
    statement = json.loads(base64.b64decode(envelope["payload"]))
    assert statement["_type"] == "https://in-toto.io/Statement/v1"
    assert statement["subject"] == [
        {"name": "127.0.0.1:5000/sentiment-api", "digest": {"sha256": IMAGE.digest[7:]}}
    ]
    assert statement["predicateType"].endswith(":stage")
    assert statement["predicate"]["checks"][0]["seconds"] == 0  # integers stay integers
    assert store.get(record.id, record.gate) == record


def test_a_source_gate_attests_the_tree_and_the_model(store):
    source = IMAGE.model_copy(update={"digest": None, "image": None})
    record = evidence(store, "dev", source)
    assert statement_of(store, record.id)["subject"] == [
        {"name": "source-tree", "digest": {"gitTree": source.source_tree}},
        {"name": "model", "digest": {"sha256": source.model_sha256}},
    ]
    assert store.get(record.id, record.gate) == record


def test_hand_written_json_never_counts(store):
    record = evidence(store, "stage", IMAGE)
    (store.root / f"{record.id}.json").write_text(record.to_json())  # the old, unsigned form
    assert "is not a DSSE envelope" in refusal(store, record.id)


def test_an_envelope_without_signatures_never_counts(store):
    record = evidence(store, "stage", IMAGE)
    path = store.root / f"{record.id}.json"
    envelope = json.loads(path.read_bytes())
    envelope["signatures"] = []
    path.write_text(json.dumps(envelope))
    assert "is unsigned" in refusal(store, record.id)


def test_an_altered_envelope_never_counts(store):
    record = evidence(store, "stage", IMAGE, passed=False)
    path = store.root / f"{record.id}.json"
    envelope = json.loads(path.read_bytes())
    statement = json.loads(base64.b64decode(envelope["payload"]))
    statement["predicate"].update(result="passed", failures=[])
    envelope["payload"] = base64.b64encode(json.dumps(statement).encode()).decode()
    path.write_text(json.dumps(envelope))
    assert "does not verify: the envelope was altered" in refusal(store, record.id)


def test_a_record_signed_by_an_unknown_key_never_counts(store):
    record = evidence(store, "stage", IMAGE)
    forger = CryptoSigner.generate_ed25519()
    resign(store, record.id, statement_of(store, record.id), forger)
    message = refusal(store, record.id)
    assert f"signed by key {forger.public_key.keyid[:16]}" in message
    assert "config/trust.yaml does not trust for stage" in message


def test_a_key_of_another_environment_cannot_sign_for_this_one(store):
    """The test job's key cannot vouch for stage: each environment signs its own gate."""
    record = evidence(store, "stage", IMAGE)
    resign(store, record.id, statement_of(store, record.id), store.keyring.signer("test"))
    assert "does not trust for stage" in refusal(store, record.id)


def test_a_record_whose_statement_names_another_digest_never_counts(store):
    record = evidence(store, "stage", IMAGE)
    statement = statement_of(store, record.id)
    statement["subject"][0]["digest"]["sha256"] = "e" * 64
    resign(store, record.id, statement)
    assert "subject is not the digest the record names" in refusal(store, record.id)


def test_a_record_dated_in_the_future_never_counts(store):
    """Ids sort by time: a future-dated pass would outrank every real record."""
    later = utc_now() + timedelta(days=30)
    record = evidence(store, "stage", IMAGE)
    statement = statement_of(store, record.id)
    future_id = f"{compact(later)}-stage-{IMAGE.digest[7:19]}"
    statement["predicate"].update(
        id=future_id, started_at=timestamp(later), finished_at=timestamp(later)
    )
    resign(store, future_id, statement)
    assert "dated in the future" in refusal(store, future_id)


def test_a_record_filed_under_another_id_never_counts(store):
    one, other = evidence(store, "stage", IMAGE), evidence(store, "stage", subject(2))
    (store.root / f"{one.id}.json").write_bytes((store.root / f"{other.id}.json").read_bytes())
    assert f"holds the record of {other.id}" in refusal(store, one.id)


def test_a_forged_pass_does_not_outrank_a_real_failure_and_the_refusal_names_it(store):
    """The attack the issue describes: a hand-written, future-dated stage pass pushed to the
    state branch, after stage really failed for this digest."""
    failed = evidence(store, "stage", IMAGE, passed=False)
    later = utc_now() + timedelta(days=1)
    forged_id = f"{compact(later)}-stage-{IMAGE.digest[7:19]}"
    forged = failed.model_copy(
        update={"id": forged_id, "result": "passed", "failures": [], "started_at": later,
                "finished_at": later}
    )  # fmt: skip
    (store.root / f"{forged_id}.json").write_text(forged.to_json())
    with pytest.raises(PromotionRefusedError) as raised:
        required_evidence(POLICY, "prod", IMAGE, store)
    message = str(raised.value)
    assert (
        f"the latest stage gate for image {IMAGE.digest} failed (evidence {failed.id})" in message
    )
    assert f"ignored 1 record(s) that do not verify: evidence {forged_id} does not count: it " \
        "is not a DSSE envelope" in message  # fmt: skip


def test_a_release_candidate_needs_verified_evidence(store):
    record = evidence(store, "stage", IMAGE)
    assert release_candidate(POLICY, IMAGE.git_commit, "v1.0.0", store).id == record.id
    resign(store, record.id, statement_of(store, record.id), CryptoSigner.generate_ed25519())
    with pytest.raises(PromotionRefusedError, match=r"no image of commit .* has passed the stage "
                       r"gate; .* \[ignored 1 record.*does not trust for stage\]"):  # fmt: skip
        release_candidate(POLICY, IMAGE.git_commit, "v1.0.0", store)


def test_a_payload_that_is_not_a_statement_never_counts(store):
    record = evidence(store, "stage", IMAGE)
    payload = json.dumps({"predicate": {"environment": "stage"}}).encode()
    (store.root / f"{record.id}.json").write_bytes(
        sign(payload, PAYLOAD_TYPE, store.keyring.signer("stage"))
    )
    assert "not an in-toto statement" in refusal(store, record.id)


ENVIRONMENTS = ("dev", "test", "stage", "prod")
OFF_DIAGONAL = [(gate, key) for gate in ENVIRONMENTS for key in ENVIRONMENTS if gate != key]


@pytest.mark.parametrize(("gate", "key"), OFF_DIAGONAL)
@pytest.mark.parametrize("claims", ["its gate's environment", "the key's environment"])
def test_no_environment_key_vouches_for_another_gate(store, gate, key, claims):
    """Every (gate, key) pair off the diagonal, whichever environment the payload claims:
    the keys a record is checked with are the ones of the gate the reader asks for."""
    record = evidence(store, gate, IMAGE)
    statement = statement_of(store, record.id)
    if claims == "the key's environment":
        statement["predicate"]["environment"] = key
    resign(store, record.id, statement, store.keyring.signer(key))
    message = refusal(store, record.id)
    assert f"config/trust.yaml does not trust for {gate}" in message
    assert store.latest(gate, digest=IMAGE.digest) is None
    assert store.records(environment=key) == []


@pytest.mark.parametrize("gate", ENVIRONMENTS)
def test_a_record_whose_environment_is_not_its_gate_never_counts(store, gate):
    """Signed with the right key, a record of the gate run "elsewhere" is still refused."""
    record = evidence(store, gate, IMAGE)
    statement = statement_of(store, record.id)
    statement["predicate"]["environment"] = "prod" if gate != "prod" else "dev"
    resign(store, record.id, statement)
    assert f"records the {gate} gate in {statement['predicate']['environment']}" in refusal(
        store, record.id
    )


@pytest.mark.parametrize(("rolled_back", "key"), [("prod", "stage"), ("stage", "dev")])
def test_a_rollback_counts_only_in_the_environment_whose_key_signed_it(store, rolled_back, key):
    record = evidence(store, "rollback", IMAGE, environment=rolled_back)
    assert store.get(record.id, "rollback", rolled_back) == record
    assert store.records(environment=rolled_back) == [record]
    resign(store, record.id, statement_of(store, record.id), store.keyring.signer(key))
    with pytest.raises(UntrustedEvidenceError, match=f"does not trust for {rolled_back}"):
        store.get(record.id, "rollback", rolled_back)
    # Listed, it is checked as a rollback in the signer's environment, which it does not claim.
    [listed] = store.rejected()
    assert f"signed with a key of {key} but records the rollback gate in {rolled_back}" in (
        listed.reason
    )
    assert store.records(environment=rolled_back) == store.records(environment=key) == []


def test_a_key_trusted_for_two_gates_is_refused(tmp_path):
    """A copied key file would let one environment's jobs sign for another's gate."""
    keys = tmp_path / "keys"
    make_keyring(keys)
    for half in ("pem", "pub"):
        (keys / f"prod.{half}").write_bytes((keys / f"dev.{half}").read_bytes())
    with pytest.raises(ReleaseError, match=r"trusted for both dev and prod.*one gate, one key"):
        make_keyring(keys).trusted("stage")
