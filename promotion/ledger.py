"""The promotion ledger: per environment, every promotion and rollback, in order, append-only.

    <state>/ledger/<env>.jsonl    one JSON object per line, never rewritten
    <state>/ledger/<env>.lock     held for a whole promotion or rollback of <env>

The releases of an environment follow from its ledger like a stack: a released
promotion pushes its digest, a rollback pops back to the release it restored. A failed
promotion pushes nothing, so the previous release is always known.
"""

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout

from atomic_files import fsync_dir
from delivery.errors import DeliveryError

RELEASED = "released"
FAILED = "failed"


class PromotionBusyError(DeliveryError):
    pass


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

    def append(self, entry: dict[str, Any]) -> dict[str, Any]:
        """Adds one entry (call with the environment's lock held); returns it numbered."""
        environment = entry["environment"]
        entry = {"sequence": len(self.entries(environment)) + 1, **entry}
        line = json.dumps(entry, sort_keys=True) + "\n"
        path = self.path(environment)
        path.parent.mkdir(parents=True, exist_ok=True)
        # One write of one line with O_APPEND: a crash leaves the earlier lines intact.
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line.encode("utf-8"))
            os.fsync(fd)
        finally:
            os.close(fd)
        fsync_dir(path.parent)
        return entry

    def entries(self, environment: str) -> list[dict[str, Any]]:
        try:
            text = self.path(environment).read_text(encoding="utf-8")
        except FileNotFoundError:
            return []
        entries = []
        for number, line in enumerate(text.split("\n"), start=1):
            if not line.strip():
                continue
            try:
                entries.append(json.loads(line))
            except ValueError:
                raise DeliveryError(
                    f"ledger {self.path(environment)} line {number} is damaged; "
                    "restore the file from a backup (it is append-only)"
                ) from None
        return entries

    def releases(self, environment: str) -> list[dict[str, Any]]:
        """The release stack, oldest first; the last one is the current release."""
        stack: list[dict[str, Any]] = []
        for entry in self.entries(environment):
            if entry["result"] != RELEASED:
                continue
            if entry["event"] == "promote":
                if not stack or stack[-1]["digest"] != entry["digest"]:
                    stack.append(entry)
            elif entry["event"] == "rollback":
                while stack and stack[-1]["digest"] != entry["digest"]:
                    stack.pop()
                if not stack:
                    stack.append(entry)
        return stack

    def rollback_target(self, environment: str) -> dict[str, Any] | None:
        """The release a rollback restores: the one before the current release, or the
        current release itself when a failed promotion left another image running."""
        stack = self.releases(environment)
        entries = self.entries(environment)
        running_failed = bool(entries) and entries[-1]["result"] != RELEASED
        if running_failed and stack and entries[-1]["digest"] != stack[-1]["digest"]:
            return stack[-1]
        return stack[-2] if len(stack) >= 2 else None
