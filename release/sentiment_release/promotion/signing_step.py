"""The signing step: what a gate run and a promotion left unsigned, checked, then signed
with the environment's key. It runs in a process of its own after the checks (`sentiment
sign ENV`), so no check ever shares a process, an environment or a file system view with
a key (sentiment_release/gates/isolation.py).

It signs exactly what the run that wrote it says it wrote: the run hands it a Batch (each record's
id and sha256, each ledger entry's hash) on its command line, or on GitHub through its step's
output, never through a file a check could write. Whatever else lies among the unsigned files was
planted or is left from elsewhere, and stays unsigned. What it signs must also hold together with
what is signed already: records of gates run in this environment (its own gate, or a rollback of
it), not dated in the future; ledger entries that continue the signed ledger one by one, whose
outcomes are the ones their records say, and which name only evidence that counts
(sentiment_release/promotion/rules.py check_chain). Anything else is refused and nothing is signed.
A signing step interrupted half way is run again with the same batch: what it signed already is not
signed twice.

Without a batch (`make sign` after an interrupted run), it signs the environment's
unsigned ledger entries and the records they name, never a record nothing names.
"""

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Protocol

from securesystemslib.signer import CryptoSigner

from sentiment_release.gates.attestation import gate_named_in
from sentiment_release.gates.evidence import (
    ID_PATTERN,
    ROLLBACK_GATE,
    EvidenceError,
    EvidenceRecord,
)
from sentiment_release.gates.evidence_store import EvidenceStore
from sentiment_release.gates.trust import TrustedKeys
from sentiment_release.promotion.ledger import Ledger, LedgerEntry, LedgerTamperedError
from sentiment_release.promotion.rules import check_chain
from sentiment_release.support.clock import compact, utc_now
from sentiment_release.support.errors import ReleaseError
from sentiment_release.support.process import run, tool

SIGNING_TIMEOUT_SECONDS = 300
_SHA256 = r"[0-9a-f]{64}"
_ITEM = re.compile(rf"record:(?P<id>[0-9A-Za-z-]+):(?P<sha>{_SHA256})|entry:(?P<entry>{_SHA256})")


class SigningRefusedError(ReleaseError):
    """What waits to be signed does not hold together; nothing was signed."""


@dataclass
class Batch:
    """What one gate run, promotion or rollback wrote unsigned."""

    records: dict[str, str] = field(default_factory=dict)  # id -> sha256 of its file
    entries: list[str] = field(default_factory=list)  # ledger entry hashes, in order

    def token(self) -> str:
        """One line for a command line or a step output."""
        return " ".join(
            [f"record:{evidence_id}:{sha}" for evidence_id, sha in self.records.items()]
            + [f"entry:{hashed}" for hashed in self.entries]
        )

    @classmethod
    def parse(cls, token: str) -> "Batch":
        batch = cls()
        for item in token.split():
            match = _ITEM.fullmatch(item)
            if match is None or (match["id"] and not ID_PATTERN.fullmatch(match["id"])):
                raise SigningRefusedError(f"{item[:80]!r} is not an item of an unsigned batch")
            if match["id"]:
                batch.records[match["id"]] = match["sha"]
            else:
                batch.entries.append(match["entry"])
        return batch

    @property
    def empty(self) -> bool:
        return not (self.records or self.entries)


@dataclass(frozen=True)
class Signed:
    environment: str
    records: list[str]
    entries: int
    # Unsigned files of this environment that were not in the batch: left unsigned.
    left: list[str] = field(default_factory=list)

    def describe(self) -> str:
        said = f"{self.environment}: " + (
            f"signed {len(self.records)} gate record(s) and {self.entries} ledger "
            f"entr{'y' if self.entries == 1 else 'ies'}"
            if self.records or self.entries
            else "nothing waits to be signed"
        )
        if self.left:
            said += f"; left unsigned, not this run's: {', '.join(self.left)}"
        return said


def sign_pending(
    environment: str,
    signer: CryptoSigner,
    store: EvidenceStore,
    ledger: Ledger,
    lock_timeout_seconds: float,
    batch: Batch | None = None,
) -> Signed:
    """Checks and signs `batch` (by default: `environment`'s unsigned ledger entries and
    the records they name) with `signer`, the environment's key, checked trusted for it
    by whoever made it."""
    with ledger.locked(environment, lock_timeout_seconds):
        signed_chain = ledger.chain(environment)
        new = _new_entries(environment, ledger, signed_chain, batch)
        wanted: dict[str, str | None] = dict(batch.records) if batch is not None else _named(new)
        records, left, present = [], [], set()
        for record, sha in store.unsigned(environment):
            present.add(record.id)
            if record.id not in wanted:
                left.append(record.id)
            elif wanted[record.id] not in (None, sha):
                raise SigningRefusedError(
                    f"refusing to sign {record.id}: it changed after the run that wrote it "
                    "said what it wrote; nothing was signed"
                )
            elif (store.root / f"{record.id}.json").exists():
                _signed_before(record, store)
            else:
                _check_record(record, environment, store)
                records.append(record)
        missing = {
            record_id for record_id in set(wanted) - present
            if not (store.root / f"{record_id}.json").exists()
        }  # fmt: skip
        if missing:
            raise SigningRefusedError(
                f"refusing to sign: {', '.join(sorted(missing))} is not among the unsigned "
                "records; nothing was signed"
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
        return Signed(environment, [record.id for record in records], len(new), left)


def _new_entries(
    environment: str,
    ledger: Ledger,
    signed_chain: list[tuple[LedgerEntry, str]],
    batch: Batch | None,
) -> list[tuple[LedgerEntry, str]]:
    """The unsigned entries to sign, each continuing the one before it from the signed
    ledger's head; with a batch, exactly its entries (those signed already skipped)."""
    signed = {hashed for _, hashed in signed_chain}
    pending = ledger.pending(environment, skip_damaged=batch is not None)
    if batch is not None:
        found = {hashed: entry for entry, hashed in pending}
        absent = [h[:12] for h in batch.entries if h not in found and h not in signed]
        if absent:
            raise SigningRefusedError(
                f"refusing to sign: the batch's ledger entries {', '.join(absent)} are not "
                "among the unsigned ones; nothing was signed"
            )
        pending = [(found[h], h) for h in batch.entries if h in found]
    new = [(entry, hashed) for entry, hashed in pending if hashed not in signed]
    head = signed_chain[-1][1] if signed_chain else None
    sequence = len(signed_chain)
    for entry, hashed in new:
        if entry.previous != head or entry.sequence != sequence + 1:
            raise SigningRefusedError(
                f"{ledger.pending_path(environment)}: entry #{entry.sequence} does not "
                f"continue {environment}'s signed ledger; nothing was signed"
            )
        head, sequence = hashed, entry.sequence
    return new


def _named(new: list[tuple[LedgerEntry, str]]) -> dict[str, str | None]:
    """The records the entries name as what their run produced (any content)."""
    return {entry.evidence: None for entry, _ in new if entry.evidence}


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


class SigningStep(Protocol):
    """Signs what a run wrote unsigned (check: before anything is deployed, SigningKeyError
    when it could not)."""

    def check(self, environment: str) -> None: ...

    def __call__(self, environment: str, batch: Batch) -> None: ...


@dataclass(frozen=True)
class SigningProcess:
    """This machine's keys sign, in a child process of their own (`sentiment sign ENV
    --batch ...`): the process that ran the checks never reads a private key."""

    keyring: TrustedKeys
    root: Path
    log: Callable[[str], None]

    def check(self, environment: str) -> None:
        self.keyring.check_local(environment)

    def __call__(self, environment: str, batch: Batch) -> None:
        done = run([tool("sentiment"), "sign", environment, "--batch", batch.token()],
                   cwd=self.root, check=False, timeout=SIGNING_TIMEOUT_SECONDS)  # fmt: skip
        if not done.ok:
            raise SigningRefusedError(f"signing {environment}'s evidence failed: {done.output}")
        self.log(done.stdout.strip())
