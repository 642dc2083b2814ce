"""Gate evidence kept as signed attestations, append-only, with the reports they point to.

Layout under the state directory:
    evidence/<id>.json          one record as a DSSE envelope
    (sentiment_release/gates/attestation.py),
                                created once and never rewritten
    evidence/reports/<id>/      junit XML, locust CSV/HTML, logs of that gate run
    pending/evidence/<id>.json  a record as a gate run left it, unsigned: the process that
                                runs checks holds no key; the signing step signs it
                                (sentiment_release/promotion/signing_step.py) and moves it to
                                evidence/

Reading verifies: a record whose envelope does not verify against the trust policy is
never returned; `rejected` says which were set aside and why, for refusals to cite.
"""

import hashlib
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from securesystemslib.signer import CryptoSigner

from sentiment.files import create_new
from sentiment_release.gates.attestation import (
    PAYLOAD_TYPE,
    UntrustedEvidenceError,
    attest,
    gate_named_in,
    read_attestation,
)
from sentiment_release.gates.evidence import (
    ID_PATTERN,
    ROLLBACK_GATE,
    EvidenceError,
    EvidenceRecord,
)
from sentiment_release.gates.trust import TrustedKeys
from sentiment_release.support.clock import compact
from sentiment_release.support.files import read_regular_file
from sentiment_release.support.records import RecordError, parse_record
from sentiment_release.support.signing import SignatureError, open_envelope


@dataclass(frozen=True)
class Rejected:
    id: str
    reason: str

    @property
    def gate(self) -> str:
        return gate_named_in(self.id)


class EvidenceStore:
    def __init__(self, root: Path, keyring: TrustedKeys, pending: Path):
        self.root = root
        self.keyring = keyring
        self.pending_root = pending
        # What this process wrote unsigned: id -> sha256 (the signing step is told).
        self.written: dict[str, str] = {}
        # What each file's content verified to, by (id, gate, environment, sha256 of the
        # content): one
        # promotion reads every record several times (rules, ledger check, refusals),
        # and a file rewritten since is read afresh.
        self._verified: dict[tuple[str, str, str, bytes], EvidenceRecord | str] = {}

    def new_id(self, gate: str, key: str, moment: datetime) -> str:
        """A fresh id; `key` is the digest or tree the gate checked."""
        return f"{compact(moment)}-{gate}-{key.removeprefix('sha256:')[:12]}"

    def reports_dir(self, evidence_id: str) -> Path:
        path = self.root / "reports" / evidence_id
        path.mkdir(parents=True, exist_ok=True)
        return path

    def write_unsigned(self, record: EvidenceRecord) -> str:
        """Leaves a gate run's record for the signing step (it counts once signed); the
        sha256 of what was written, which the run hands the signing step."""
        data = record.to_json().encode("utf-8") + b"\n"
        try:
            create_new(self.pending_root / f"{record.id}.json", data)
        except FileExistsError:
            raise EvidenceError(f"evidence {record.id} exists already") from None
        self.written[record.id] = hashlib.sha256(data).hexdigest()
        return self.written[record.id]

    def unsigned(self, environment: str) -> list[tuple[EvidenceRecord, str]]:
        """The records of gates run in `environment` that wait to be signed, oldest first,
        each with the sha256 of its file. A file that is not a record is passed over: it
        can never be signed."""
        found = []
        for path in sorted(self.pending_root.glob("*.json")):
            if not ID_PATTERN.fullmatch(path.stem):
                continue
            try:
                data = read_regular_file(path)
                record = parse_record(EvidenceRecord, data.decode("utf-8"), str(path))
            except (RecordError, OSError, UnicodeDecodeError):
                continue
            if record.id == path.stem and record.environment == environment:
                found.append((record, hashlib.sha256(data).hexdigest()))
        return found

    def append(self, record: EvidenceRecord, signer: CryptoSigner) -> Path:
        """Writes a record signed (the signing step); an existing one is never replaced,
        and the unsigned copy it came from is dropped."""
        path = self.root / f"{record.id}.json"
        try:
            create_new(path, attest(record, signer) + b"\n")
        except FileExistsError:
            raise EvidenceError(
                f"evidence {record.id} exists already; it is never rewritten"
            ) from None
        self.drop_unsigned(record.id)
        return path

    def drop_unsigned(self, evidence_id: str) -> None:
        (self.pending_root / f"{evidence_id}.json").unlink(missing_ok=True)

    def get(self, evidence_id: str, gate: str, environment: str | None = None) -> EvidenceRecord:
        """The record as evidence of `gate` run in `environment` (the gate's own; only the
        rollback gate runs in the environment it rolls back), verified with that
        environment's keys: the one way any reader gets a
        record. EvidenceError when there is none; UntrustedEvidenceError, saying why,
        when it does not verify as that gate's."""
        environment = environment or gate
        if gate != ROLLBACK_GATE and environment != gate:
            raise EvidenceError(f"the {gate} gate runs in {gate}, never in {environment}")
        if not ID_PATTERN.fullmatch(evidence_id):
            raise EvidenceError(f"{evidence_id!r} is not an evidence id")
        path = self.root / f"{evidence_id}.json"
        try:
            document = path.read_bytes()
        except FileNotFoundError:
            raise EvidenceError(f"no evidence {evidence_id} in {self.root}") from None
        key = (evidence_id, gate, environment, hashlib.sha256(document).digest())
        if key not in self._verified:
            try:
                self._verified[key] = read_attestation(
                    document, evidence_id, self.keyring, gate, environment
                )
            except UntrustedEvidenceError as error:
                self._verified[key] = str(error)
        found = self._verified[key]
        if isinstance(found, str):
            raise UntrustedEvidenceError(found)
        return found

    def records(
        self, gate: str | None = None, environment: str | None = None
    ) -> list[EvidenceRecord]:
        """Every record that verifies (of `gate`, of gates run in `environment`, if
        given), oldest first."""
        return [
            found for found in self._read(gate, environment) if isinstance(found, EvidenceRecord)
        ]

    def rejected(self, gate: str | None = None) -> list[Rejected]:
        """The records set aside (of `gate`, if given), oldest first."""
        return [found for found in self._read(gate) if isinstance(found, Rejected)]

    def latest(self, gate: str, **subject: str | None) -> EvidenceRecord | None:
        """The newest verified record of `gate` whose subject has all the given fields."""
        for record in reversed(self.records(gate)):
            if all(getattr(record.subject, field) == value for field, value in subject.items()):
                return record
        return None

    def _read(
        self, gate: str | None = None, environment: str | None = None
    ) -> list[EvidenceRecord | Rejected]:
        """Each record, as evidence of the gate its id names (verified with that gate's
        keys; a rollback's, with the keys of the environment whose key signed it)."""
        if not self.root.is_dir():
            return []
        names = sorted(p.stem for p in self.root.glob("*.json") if ID_PATTERN.fullmatch(p.stem))
        found: list[EvidenceRecord | Rejected] = []
        for name in names:
            named = gate_named_in(name)
            if gate is not None and named != gate:
                continue
            ran_in = self._rolled_back(name) if named == ROLLBACK_GATE else named
            if environment is not None and ran_in != environment:
                continue
            try:
                found.append(self.get(name, named, ran_in))
            except EvidenceError as error:
                found.append(Rejected(name, str(error)))
        return found

    def _rolled_back(self, evidence_id: str) -> str:
        """The environment whose key signed a rollback record (the gate is named by the id;
        the environment by the key that verifies, never by the payload, nor by a key id a
        signature merely claims)."""
        try:
            envelope = open_envelope((self.root / f"{evidence_id}.json").read_bytes(), PAYLOAD_TYPE)
        except (OSError, SignatureError):
            return ROLLBACK_GATE  # no environment's keys: it is refused, with the reason
        owners = sorted({owner for key_id in envelope.signatures
                         if (owner := self.keyring.owner(key_id))})  # fmt: skip
        for owner in owners:
            try:
                self.get(evidence_id, ROLLBACK_GATE, owner)
                return owner
            except EvidenceError:
                continue
        return owners[0] if owners else ROLLBACK_GATE


def ignored(rejected: list[Rejected], limit: int = 3) -> str:
    """A refusal's note on the records it set aside."""
    if not rejected:
        return ""
    shown = "; ".join(found.reason for found in rejected[-limit:])
    more = f" (and {len(rejected) - limit} more)" if len(rejected) > limit else ""
    return f" [ignored {len(rejected)} record(s) that do not verify: {shown}{more}]"
