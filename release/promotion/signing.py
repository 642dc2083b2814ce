"""The signing step: what a gate run and a promotion left unsigned, checked, then signed
with the environment's key. It runs in a process of its own after the checks (`sentiment
sign ENV`), so no check ever shares a process, an environment or a file system view with
a key (gates/isolation.py).

It signs only what holds together with what is signed already: records of gates run in
this environment (its own gate, or a rollback of it), not dated in the future; ledger
entries that continue the signed ledger, whose outcomes are the ones the records say,
and which name only evidence that counts (promotion/rules.py check_chain). Anything else
is refused and nothing is signed. An interrupted signing step is run again: what it
signed already is not signed twice.
"""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Protocol

from securesystemslib.signer import CryptoSigner

from gates.attestation import gate_named_in
from gates.evidence import ROLLBACK_GATE, EvidenceError, EvidenceRecord
from gates.evidence_store import EvidenceStore
from gates.trust import Keyring
from promotion.ledger import Ledger, LedgerTamperedError
from promotion.rules import check_chain
from support.clock import compact, utc_now
from support.errors import ReleaseError
from support.process import run, tool

SIGNING_TIMEOUT_SECONDS = 300


class SigningRefusedError(ReleaseError):
    """What waits to be signed does not hold together; nothing was signed."""


@dataclass(frozen=True)
class Signed:
    environment: str
    records: list[str]
    entries: int

    def describe(self) -> str:
        if not self.records and not self.entries:
            return f"{self.environment}: nothing waits to be signed"
        return (
            f"{self.environment}: signed {len(self.records)} gate record(s) and "
            f"{self.entries} ledger entr{'y' if self.entries == 1 else 'ies'}"
        )


def sign_pending(
    environment: str,
    signer: CryptoSigner,
    store: EvidenceStore,
    ledger: Ledger,
    lock_timeout_seconds: float,
) -> Signed:
    """Checks and signs `environment`'s unsigned records and ledger entries (`signer` is
    its key, checked trusted for it by whoever made it)."""
    with ledger.locked(environment, lock_timeout_seconds):
        records = []
        for record in store.unsigned(environment):
            if (store.root / f"{record.id}.json").exists():
                _signed_before(record, store)
                continue
            _check_record(record, environment, store)
            records.append(record)
        signed_chain = ledger.chain(environment)
        pending = ledger.pending(environment)
        head = signed_chain[-1][1] if signed_chain else None
        signed_hashes = {entry_hash for _, entry_hash in signed_chain}
        new = [(entry, hashed) for entry, hashed in pending if hashed not in signed_hashes]
        if new and new[0][0].previous != head:
            raise SigningRefusedError(
                f"{ledger.pending_path(environment)} does not continue {environment}'s signed "
                f"ledger (its entry #{new[0][0].sequence} follows another entry): nothing "
                "was signed"
            )
        unsigned = {record.id: record for record in records}

        def record_of(evidence_id: str, gate: str, ran_in: str) -> EvidenceRecord:
            found = unsigned.get(evidence_id)
            if found is None:
                return store.get(evidence_id, gate, ran_in)
            if (found.gate, found.environment) != (gate, ran_in):
                raise EvidenceError(f"{evidence_id} is not a record of the {gate} gate")
            return found

        try:
            check_chain(
                environment, signed_chain + new, f"{environment}'s ledger with its unsigned "
                "entries", record_of, store.records(environment=environment) + records,
            )  # fmt: skip
        except LedgerTamperedError as error:
            raise SigningRefusedError(f"nothing was signed: {error}") from None
        for record in records:
            store.append(record, signer)
        ledger.seal(environment, new, signer)
        return Signed(environment, [record.id for record in records], len(new))


def _check_record(record: EvidenceRecord, environment: str, store: EvidenceStore) -> None:
    refused = f"refusing to sign {record.id}"
    if record.gate not in (environment, ROLLBACK_GATE) or gate_named_in(record.id) != record.gate:
        raise SigningRefusedError(
            f"{refused}: it is a record of the {record.gate} gate, and {environment}'s key "
            "signs only its own gate's and its rollbacks'"
        )
    if not record.id.startswith(compact(record.started_at)):
        raise SigningRefusedError(f"{refused}: its id and its start time differ")
    latest = utc_now() + timedelta(seconds=store.keyring.max_clock_skew_seconds)
    if record.finished_at > latest or record.started_at > record.finished_at:
        raise SigningRefusedError(f"{refused}: it is dated in the future")


def _signed_before(record: EvidenceRecord, store: EvidenceStore) -> None:
    """A record an interrupted signing step signed already: its unsigned copy goes."""
    try:
        signed = store.get(record.id, record.gate, record.environment)
    except EvidenceError:
        signed = None
    if signed != record:
        raise SigningRefusedError(
            f"refusing to sign {record.id}: evidence {record.id} exists already, and is not "
            "this record: nothing was signed"
        )
    store.drop_unsigned(record.id)


class Signing(Protocol):
    """Signs an environment's unsigned records and entries (check: before anything is
    deployed, SigningKeyError when it could not)."""

    def check(self, environment: str) -> None: ...

    def __call__(self, environment: str) -> None: ...


@dataclass(frozen=True)
class SigningProcess:
    """This machine's keys sign, in a child process of their own (`sentiment sign ENV`):
    the process that ran the checks never reads a private key."""

    keyring: Keyring
    root: Path
    log: Callable[[str], None]

    def check(self, environment: str) -> None:
        self.keyring.check_local(environment)

    def __call__(self, environment: str) -> None:
        done = run([tool("sentiment"), "sign", environment], cwd=self.root, check=False,
                   timeout=SIGNING_TIMEOUT_SECONDS)  # fmt: skip
        if not done.ok:
            raise SigningRefusedError(f"signing {environment}'s evidence failed: {done.output}")
        self.log(done.stdout.strip())
