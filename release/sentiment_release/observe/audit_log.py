"""Reading an environment's audit log: every audit*.jsonl file of its monitoring volume,
oldest first, each line an event (sentiment/serving/recorder.py). A line that is not one
(a torn write at a crash, something else in the file) is counted and skipped, never
fatal. The log may be live: the files are opened together, as one consistent set, so a
rotation while it is read neither loses a file nor reads one twice."""

import contextlib
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from sentiment.serving.audit import audit_files

# Rotations are rare (one per audit_max_bytes written): a set is had within a few tries.
OPEN_ATTEMPTS = 20


@dataclass
class AuditLog:
    directory: Path
    skipped_lines: int = field(default=0, init=False)

    def files(self) -> list[Path]:
        return audit_files(self.directory)

    def opened(self) -> list[BinaryIO]:
        """The files, oldest first, opened as they were listed: retried while a rotation
        renames them between the listing and the opening (an open file is read whole,
        whatever its name becomes)."""
        for _ in range(OPEN_ATTEMPTS):
            listed = self.files()
            handles: list[BinaryIO] = []
            try:
                for path in listed:
                    handles.append(open(path, "rb"))  # noqa: SIM115  (closed by the caller)
                opened = [os.fstat(handle.fileno()).st_ino for handle in handles]
                again = self.files()
                if again == listed and [path.stat().st_ino for path in again] == opened:
                    return handles
            except FileNotFoundError:
                pass
            for handle in handles:
                handle.close()
        raise OSError(f"{self.directory}: the audit files kept rotating while being opened")

    def events(self) -> Iterator[dict]:
        with contextlib.ExitStack() as stack:
            handles = [stack.enter_context(handle) for handle in self.opened()]
            for handle in handles:
                for line in handle:
                    try:
                        event = json.loads(line)
                    except ValueError:
                        self.skipped_lines += 1
                        continue
                    if isinstance(event, dict) and isinstance(event.get("predictions"), list):
                        yield event
                    else:
                        self.skipped_lines += 1

    def find(self, request_id: str) -> list[dict]:
        """The events of one request id (a client may reuse one: all of them, in order)."""
        needle = json.dumps(request_id)  # cheap pre-filter before parsing a line
        found = []
        with contextlib.ExitStack() as stack:
            for handle in [stack.enter_context(handle) for handle in self.opened()]:
                for raw in handle:
                    line = raw.decode("utf-8", errors="replace")
                    if needle in line:
                        try:
                            event = json.loads(line)
                        except ValueError:
                            continue
                        if isinstance(event, dict) and event.get("request_id") == request_id:
                            found.append(event)
        return found
