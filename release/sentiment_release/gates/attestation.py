"""A gate record as a signed attestation: an in-toto Statement v1 whose subject is what the
gate checked (the image repository and its sha256 digest; before an image exists, the
source tree and the model), whose predicate is the record, in a DSSE envelope signed with
the key of the environment the gate ran in (a rollback's checks run in the environment
they roll back). Reading one back verifies all of it against the trust policy, with the
keys of the gate the reader asks for: a record never picks the keys it is checked with.

The payload is our own JSON, so integers stay integers (protobuf's Struct would make them
floats); in-toto-attestation validates the Statement's shape on the way in and out.
"""

import json
from datetime import timedelta

from google.protobuf.json_format import ParseDict, ParseError
from in_toto_attestation.v1 import statement_pb2
from in_toto_attestation.v1.statement import STATEMENT_TYPE_URI, Statement
from securesystemslib.signer import CryptoSigner

from sentiment_release.delivery.references import PINNED
from sentiment_release.gates.evidence import EvidenceError, EvidenceRecord
from sentiment_release.gates.subject import Subject
from sentiment_release.gates.trust import TrustedKeys
from sentiment_release.support.clock import compact, utc_now
from sentiment_release.support.records import RecordError, parse_record
from sentiment_release.support.signing import SignatureError, open_envelope, sign, verify

PAYLOAD_TYPE = "application/vnd.in-toto+json"
PREDICATE_TYPE_PREFIX = "urn:sentiment-release:gate-evidence:v1:"


class UntrustedEvidenceError(EvidenceError):
    """A record that never counts; the message says which and why."""


def predicate_type(gate: str) -> str:
    return PREDICATE_TYPE_PREFIX + gate


def statement_subject(subject: Subject) -> list[dict]:
    if subject.digest is not None:
        match = PINNED.fullmatch(subject.image or "")
        name = match["name"] if match else "image"
        return [{"name": name, "digest": {"sha256": subject.digest.removeprefix("sha256:")}}]
    return [
        {"name": "source-tree", "digest": {"gitTree": subject.source_tree}},
        {"name": "model", "digest": {"sha256": subject.model_sha256}},
    ]


def attest(record: EvidenceRecord, signer: CryptoSigner) -> bytes:
    """The record as a signed DSSE envelope (JSON bytes)."""
    statement = {
        "_type": STATEMENT_TYPE_URI,
        "subject": statement_subject(record.subject),
        "predicateType": predicate_type(record.gate),
        "predicate": json.loads(record.to_json()),
    }
    _validate_shape(statement)
    payload = json.dumps(statement, sort_keys=True, separators=(",", ":")).encode("utf-8")
    return sign(payload, PAYLOAD_TYPE, signer)


def read_attestation(
    document: bytes, evidence_id: str, keyring: TrustedKeys, gate: str, environment: str
) -> EvidenceRecord:
    """The record in `document` (the file of `evidence_id`) as evidence of `gate` run in
    `environment`, which the reader asks for: its envelope verifies with a key the trust
    policy gives that environment (never one a claim inside the payload picks), it is a
    record of that gate in that environment, its statement is about what the record says,
    and it is not dated in the future. UntrustedEvidenceError otherwise."""
    refused = f"evidence {evidence_id} does not count"
    try:
        envelope = open_envelope(document, PAYLOAD_TYPE)
        trusted = keyring.trusted(environment)
        verify(
            envelope, {key_id: found.key for key_id, found in trusted.items()},
            f"which config/trust.yaml does not trust for {environment}" if trusted
            else f"and config/trust.yaml trusts no key for {environment}",
        )  # fmt: skip
    except SignatureError as error:
        raise UntrustedEvidenceError(f"{refused}: {error}") from None
    try:
        statement = json.loads(envelope.payload)
        _validate_shape(statement)
        record = parse_record(EvidenceRecord, json.dumps(statement["predicate"]), "its predicate")
    except RecordError as error:
        raise UntrustedEvidenceError(f"{refused}: {error}") from None
    except (ValueError, KeyError, TypeError, ParseError) as error:
        raise UntrustedEvidenceError(
            f"{refused}: its signed payload is not an in-toto statement ({str(error)[:200]})"
        ) from None
    if (record.gate, record.environment) != (gate, environment):
        raise UntrustedEvidenceError(
            f"{refused} as the {gate} gate's in {environment}: it is signed with a key of "
            f"{environment} but records the {record.gate} gate in {record.environment}"
        )
    problem = _inconsistency(statement, record, evidence_id, keyring.max_clock_skew_seconds)
    if problem:
        raise UntrustedEvidenceError(f"{refused}: {problem}")
    return record


def gate_named_in(evidence_id: str) -> str:
    """The gate an id names ("<time>-<gate>-<12 hex>"): whose keys must have signed it."""
    return evidence_id.split("-", 1)[1].rsplit("-", 1)[0]


def _inconsistency(
    statement: dict, record: EvidenceRecord, evidence_id: str, skew_seconds: int
) -> str | None:
    if record.id != evidence_id or record.gate != gate_named_in(evidence_id):
        return f"it holds the record of {record.id}, {record.gate} gate"
    if statement["predicateType"] != predicate_type(record.gate):
        return f"its predicate type {statement['predicateType']!r} is not the {record.gate} gate's"
    if statement["subject"] != statement_subject(record.subject):
        return "its statement's subject is not the digest the record names"
    if not evidence_id.startswith(compact(record.started_at)):
        return "its id and its start time differ"
    latest = utc_now() + timedelta(seconds=skew_seconds)
    if record.finished_at > latest or record.started_at > record.finished_at:
        return (
            f"it is dated in the future (finished {record.finished_at.isoformat()}; "
            f"clocks may differ by {skew_seconds} s, config/trust.yaml)"
        )
    return None


def _validate_shape(statement: dict) -> None:
    """in-toto-attestation's checks of a Statement v1 (type, subjects with digests,
    predicate type and predicate)."""
    proto = ParseDict(statement, statement_pb2.Statement())
    Statement.copy_from_pb(proto).validate()
