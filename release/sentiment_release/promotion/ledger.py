"""The promotion ledger: per environment, every promotion and rollback, in order, append-only,
each entry signed by that environment's key.

    <state>/ledger/<env>.jsonl            one signed entry per line, never rewritten
    <state>/pending/ledger/<env>.jsonl    entries written by a promotion or rollback,
                                          waiting for the signing step
                                          (sentiment_release/promotion/signing_step.py)
    <state>/ledger/<env>.lock             held for a whole promotion, rollback or signing

A line is {"entry": {...}, "signatures": [...]}: the entry as readable JSON and DSSE
signatures over its canonical form, by a key config/trust.yaml trusts for the ledger's
own environment (the file's, never a claim in the entry). Each entry carries the sha256
of the canonical entry before it, so an edited, reordered or cut line breaks the chain,
and an appended line nobody with the key signed is refused. The process that deploys
and runs checks never holds a key: it writes its entries to the pending file, and the
signing step, in a process of its own, checks them against the signed ledger and the
evidence they name before it signs them (sentiment_release/promotion/rules.py check_ledger).

A promotion or rollback writes two entries: "deploying" before it touches the
environment, so a runner killed mid-deploy leaves a trace, then its outcome, which
names the gate record it produced.

The releases of an environment follow from its ledger like a stack: a released
promotion pushes its digest, a rollback pops back to the release it restored. A failed
promotion pushes nothing, so the previous release is always known.
"""

import hashlib
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Literal

from filelock import FileLock, Timeout
from pydantic import Field
from securesystemslib.signer import CryptoSigner

from sentiment.files import fsync_dir
from sentiment.serving.settings.schema import EnvironmentName
from sentiment_release.delivery.records import ModelRef
from sentiment_release.delivery.references import Digest, PinnedImage
from sentiment_release.gates.trust import TrustedKeys
from sentiment_release.support.clock import Timestamp
from sentiment_release.support.errors import ReleaseError
from sentiment_release.support.records import Record, RecordError, parse_record
from sentiment_release.support.signing import SignatureError, sign_detached, verify_detached

Sha256 = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
UNTIL_RESTORED = (
    "Nothing relies on this ledger until it is the one the state branch holds, or extends "
    "it by signed entries (`git show <state branch>:ledger/<env>.jsonl`; `sentiment state "
    "restore` puts back what was cut)"
)
# What a ledger entry's signatures are over (DSSE's payload type).
PAYLOAD_TYPE = "application/vnd.sentiment-release.ledger-entry+json"
RELEASED = "released"
FAILED = "failed"
DEPLOYING = "deploying"


class PromotionBusyError(ReleaseError):
    pass


class LedgerTamperedError(RecordError):
    """The ledger is not what this tooling wrote: nothing may rely on it."""


def canonical(document: object) -> bytes:
    """The bytes an entry's hash and signatures are over: sorted keys, no spaces."""
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def entry_hash(document: object) -> str:
    return hashlib.sha256(canonical(document)).hexdigest()


class LedgerEntry(Record):
    sequence: int = Field(ge=1)
    event: Literal["promote", "rollback"]
    environment: EnvironmentName
    # "deploying": written before the deploy; its outcome (released or failed) follows.
    result: Literal["deploying", "released", "failed"]
    # The sha256 of the line before this one; None only for the first.
    previous: Sha256 | None
    digest: Digest | None
    image: PinnedImage | None
    git_commit: str | None = None
    model: ModelRef | None
    # The gate record this event produced.
    evidence: str | None
    actor: str
    at: Timestamp
    # promote: where the image came from, the evidence it relied on, its release tag.
    from_environment: EnvironmentName | None = None
    relied_on: list[str] = Field(default_factory=list)
    release_tag: str | None = None
    # The digest running before this event.
    replaced: str | None = None
    # rollback: set off by a failed gate (not by hand), and the entry it restored.
    automatic: bool | None = None
    restores: int | None = None

    @property
    def released(self) -> bool:
        return self.result == RELEASED


class Ledger:
    def __init__(self, root: Path, keyring: TrustedKeys, pending_root: Path):
        self.root = root
        self.keyring = keyring
        self.pending_root = pending_root
        # This operation's own entries, not yet signed, per environment: what its next
        # entry chains to. Reset whenever the environment's lock is taken.
        self._own: dict[str, list[tuple[LedgerEntry, str]]] = {}

    def path(self, environment: str) -> Path:
        return self.root / f"{environment}.jsonl"

    def pending_path(self, environment: str) -> Path:
        return self.pending_root / f"{environment}.jsonl"

    @contextmanager
    def locked(self, environment: str, timeout: float) -> Iterator[None]:
        """Holds `environment`'s lock; a second holder waits `timeout` seconds, then fails."""
        self.root.mkdir(parents=True, exist_ok=True)
        holder = self.root / f"{environment}.holder"
        lock = FileLock(self.root / f"{environment}.lock", timeout=timeout)
        try:
            lock.acquire()
        except Timeout:
            who = holder.read_text(encoding="utf-8").strip() if holder.exists() else "unknown"
            raise PromotionBusyError(
                f"another promotion or rollback of {environment} is running ({who}); "
                f"waited {timeout:g}s. Nothing was changed: try again when it has finished"
            ) from None
        self._own.pop(environment, None)
        try:
            holder.write_text(f"pid {os.getpid()}\n", encoding="utf-8")
            yield
        finally:
            self._own.pop(environment, None)
            holder.unlink(missing_ok=True)
            lock.release()

    def append(self, **fields) -> tuple[LedgerEntry, str]:
        """Adds one unsigned entry (call with the environment's lock held), numbered next
        and chained to the last, signed or this operation's own; the entry and its hash.
        It counts once the signing step has signed it."""
        environment = fields["environment"]
        own = self._own.setdefault(environment, [])
        chain = self.chain(environment) + own
        entry = LedgerEntry(
            sequence=len(chain) + 1, previous=chain[-1][1] if chain else None, **fields
        )
        document = json.loads(entry.to_json(indent=None))
        _append_line(self.pending_path(environment), canonical(document))
        own.append((entry, entry_hash(document)))
        return own[-1]

    def pending(
        self, environment: str, skip_damaged: bool = False
    ) -> list[tuple[LedgerEntry, str]]:
        """The unsigned entries waiting for the signing step, read back, each with its hash
        (RecordError when one is damaged, unless `skip_damaged`: the signing step, given
        the hashes of the entries it signs, passes over anything else)."""
        path = self.pending_path(environment)
        found = []
        for number, line in _lines(path):
            try:
                entry = parse_record(LedgerEntry, line, f"{path} line {number}")
                found.append((entry, entry_hash(json.loads(line))))
            except (RecordError, ValueError):
                if not skip_damaged:
                    raise
        return found

    def seal(
        self, environment: str, entries: list[tuple[LedgerEntry, str]], signer: CryptoSigner
    ) -> None:
        """Appends `entries` (the pending ones, checked) signed, then drops the pending file
        (call with the lock held). Entries already signed, by a signing step interrupted
        before it dropped the file, are not written twice."""
        signed = {entry_hash for _, entry_hash in self.chain(environment)}
        path = self.path(environment)
        for entry, hashed in entries:
            if hashed in signed:
                continue
            document = json.loads(entry.to_json(indent=None))
            if entry_hash(document) != hashed:
                raise LedgerTamperedError(f"pending entry #{entry.sequence} is not in its own form")
            signatures = sign_detached(canonical(document), PAYLOAD_TYPE, signer)
            _append_line(path, canonical({"entry": document, "signatures": signatures}))
        self.pending_path(environment).unlink(missing_ok=True)
        self._own.pop(environment, None)

    def chain(self, environment: str) -> list[tuple[LedgerEntry, str]]:
        """The signed entries with each one's hash, in order; LedgerTamperedError when a
        line is not signed by a key trusted for `environment`, out of place, edited, or
        not this environment's."""
        path = self.path(environment)
        trusted = {key_id: found.key for key_id, found in self.keyring.trusted(environment).items()}
        chain: list[tuple[LedgerEntry, str]] = []
        for number, line in _lines(path):
            where = f"{path} line {number}"
            if _before_chaining(line):
                raise LedgerTamperedError(
                    f"{where} was written before ledgers were hash-chained (it has no "
                    "`previous`), so nothing can vouch for it: start a new state branch "
                    "(README: Upgrading a delivery-state branch)"
                )
            document, signatures = _signed_line(line, where)
            try:
                verify_detached(
                    canonical(document), PAYLOAD_TYPE, signatures, trusted,
                    f"which config/trust.yaml does not trust for {environment}" if trusted
                    else f"and config/trust.yaml trusts no key for {environment}",
                )  # fmt: skip
            except SignatureError as error:
                raise LedgerTamperedError(
                    f"{where} does not count: {error}. {UNTIL_RESTORED}"
                ) from None
            entry = parse_record(LedgerEntry, json.dumps(document), where)
            expected = chain[-1][1] if chain else None
            if entry.environment != environment:
                raise LedgerTamperedError(
                    f"{path} holds entry #{entry.sequence} of {entry.environment!r}: a "
                    "ledger holds one environment's entries"
                )
            if entry.sequence != len(chain) + 1 or entry.previous != expected:
                raise LedgerTamperedError(
                    f"{where} (entry #{entry.sequence}) does not follow the line before it: "
                    f"the ledger was edited, reordered or cut. {UNTIL_RESTORED}"
                )
            chain.append((entry, entry_hash(document)))
        return chain

    def entries(self, environment: str) -> list[LedgerEntry]:
        return [entry for entry, _ in self.chain(environment)]

    def releases(self, environment: str) -> list[LedgerEntry]:
        """The release stack, oldest first; the last one is the current release."""
        stack: list[LedgerEntry] = []
        for entry in self.entries(environment):
            if not entry.released:
                continue
            if entry.event == "promote":
                if not stack or stack[-1].digest != entry.digest:
                    stack.append(entry)
            else:
                while stack and stack[-1].digest != entry.digest:
                    stack.pop()
                if not stack:
                    stack.append(entry)
        return stack

    def rollback_target(self, environment: str) -> LedgerEntry | None:
        """The release a rollback restores: the one before the current release, or the
        current release itself when a failed promotion left another image running."""
        stack = self.releases(environment)
        entries = self.entries(environment)
        running_failed = bool(entries) and not entries[-1].released
        if running_failed and stack and entries[-1].digest != stack[-1].digest:
            return stack[-1]
        return stack[-2] if len(stack) >= 2 else None

    def running(self, environment: str) -> str | None:
        """The digest the last entry left running (after an interrupted deploy, the one
        it was deploying: what runs is then unknown, and `status` says so)."""
        entries = self.entries(environment)
        return entries[-1].digest if entries else None


def _lines(path: Path) -> Iterator[tuple[int, str]]:
    """A JSON-lines file's non-blank lines with their numbers (none when it is missing)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return
    except (UnicodeDecodeError, OSError) as error:
        raise RecordError(f"{path} cannot be read: {error}") from None
    for number, line in enumerate(text.split("\n"), start=1):
        if line.strip():
            yield number, line


def _append_line(path: Path, line: bytes) -> None:
    """One write of one line with O_APPEND: a crash leaves the earlier lines intact."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line + b"\n")
        os.fsync(fd)
    finally:
        os.close(fd)
    fsync_dir(path.parent)


def _signed_line(line: str, where: str) -> tuple[dict, object]:
    """A ledger line's entry (as read) and its signatures."""
    try:
        document = json.loads(line)
    except ValueError:
        raise RecordError(f"{where} is damaged: not JSON") from None
    if not isinstance(document, dict) or set(document) != {"entry", "signatures"}:
        raise LedgerTamperedError(
            f"{where} is not a signed ledger entry ({{entry, signatures}}): a line written by "
            "hand, or before ledgers were signed (README: Upgrading a delivery-state "
            f"branch), never counts. {UNTIL_RESTORED}"
        )
    entry, signatures = document["entry"], document["signatures"]
    if not isinstance(entry, dict) or not isinstance(signatures, list):
        raise LedgerTamperedError(f"{where} is not a signed ledger entry")
    return entry, signatures


def _before_chaining(line: str) -> bool:
    """An entry of the unchained format (sequence numbers, no hash of the line before)."""
    try:
        document = json.loads(line)
    except ValueError:
        return False
    if not isinstance(document, dict) or type(document.get("schema_version")) is not int:
        return False
    return document["schema_version"] == 1 and "sequence" in document and "previous" not in document
