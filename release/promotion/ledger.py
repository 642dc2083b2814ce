"""The promotion ledger: per environment, every promotion and rollback, in order, append-only.

    <state>/ledger/<env>.jsonl    one typed entry per line, never rewritten
    <state>/ledger/<env>.lock     held for a whole promotion or rollback of <env>

A promotion or rollback writes two entries: "deploying" before it touches the
environment, so a runner killed mid-deploy leaves a trace, then its outcome. Each entry
carries the sha256 of the line before it: an edited or reordered line breaks the chain,
and reading refuses it. (The gate's signed evidence records the hash of the "deploying"
entry it followed: promotion/rules.py checks the chain against it, which a rewritten
or truncated ledger cannot satisfy.)

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

from delivery.records import ModelRef
from delivery.references import Digest, PinnedImage
from service.settings.schema import EnvironmentName
from support.clock import Timestamp
from support.errors import ReleaseError
from support.files import fsync_dir
from support.records import Record, RecordError, parse_record

Sha256 = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
RELEASED = "released"
FAILED = "failed"
DEPLOYING = "deploying"


class PromotionBusyError(ReleaseError):
    pass


class LedgerTamperedError(RecordError):
    """The ledger is not what this tooling wrote: nothing may rely on it."""


def line_hash(line: str) -> str:
    return hashlib.sha256(line.encode("utf-8")).hexdigest()


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
    def __init__(self, root: Path):
        self.root = root

    def path(self, environment: str) -> Path:
        return self.root / f"{environment}.jsonl"

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
        try:
            holder.write_text(f"pid {os.getpid()}\n", encoding="utf-8")
            yield
        finally:
            holder.unlink(missing_ok=True)
            lock.release()

    def append(self, **fields) -> tuple[LedgerEntry, str]:
        """Adds one entry (call with the environment's lock held), numbered next and
        chained to the last; the entry and its hash."""
        environment = fields["environment"]
        chain = self.chain(environment)
        entry = LedgerEntry(
            sequence=len(chain) + 1, previous=chain[-1][1] if chain else None, **fields
        )
        line = entry.to_json(indent=None)
        path = self.path(environment)
        path.parent.mkdir(parents=True, exist_ok=True)
        # One write of one line with O_APPEND: a crash leaves the earlier lines intact.
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, (line + "\n").encode("utf-8"))
            os.fsync(fd)
        finally:
            os.close(fd)
        fsync_dir(path.parent)
        return entry, line_hash(line)

    def chain(self, environment: str) -> list[tuple[LedgerEntry, str]]:
        """The entries with the hash of each one's line, in order; LedgerTamperedError when
        a line is out of place, edited, or not this environment's."""
        path = self.path(environment)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return []
        except (UnicodeDecodeError, OSError) as error:
            raise RecordError(f"{path} cannot be read: {error}") from None
        chain: list[tuple[LedgerEntry, str]] = []
        for number, line in enumerate(text.split("\n"), start=1):
            if not line.strip():
                continue
            if _before_chaining(line):
                raise LedgerTamperedError(
                    f"{path} line {number} was written before ledgers were hash-chained (it "
                    "has no `previous`), so nothing can vouch for it: move the file aside and "
                    "let the next promotion start the ledger afresh"
                )
            entry = parse_record(LedgerEntry, line, f"{path} line {number}")
            expected = chain[-1][1] if chain else None
            if entry.environment != environment:
                raise LedgerTamperedError(
                    f"{path} holds entry #{entry.sequence} of {entry.environment!r}: a "
                    "ledger holds one environment's entries"
                )
            if entry.sequence != len(chain) + 1 or entry.previous != expected:
                raise LedgerTamperedError(
                    f"{path} line {number} (entry #{entry.sequence}) does not follow the line "
                    "before it: the ledger was edited, reordered or cut. Nothing relies on it; "
                    "restore it from the state branch's history (git log "
                    "<state branch> -- ledger/)"
                )
            chain.append((entry, line_hash(line)))
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


def _before_chaining(line: str) -> bool:
    """An entry of the unchained format (sequence numbers, no hash of the line before)."""
    try:
        document = json.loads(line)
    except ValueError:
        return False
    if not isinstance(document, dict) or type(document.get("schema_version")) is not int:
        return False
    return document["schema_version"] == 1 and "sequence" in document and "previous" not in document
