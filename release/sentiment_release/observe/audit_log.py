"""Reading an environment's audit log: every audit*.jsonl file of its monitoring volume,
oldest first, each line an event (sentiment/serving/recorder.py). A line that is not one (a torn
write at a crash, something else in the file) is counted and skipped, never fatal."""

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from sentiment.serving.audit import audit_files


@dataclass
class AuditLog:
    directory: Path
    skipped_lines: int = field(default=0, init=False)

    def files(self) -> list[Path]:
        return audit_files(self.directory)

    def events(self) -> Iterator[dict]:
        for path in self.files():
            with open(path, "rb") as handle:
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
        for path in self.files():
            with open(path, encoding="utf-8", errors="replace") as handle:
                for line in handle:
                    if needle in line:
                        try:
                            event = json.loads(line)
                        except ValueError:
                            continue
                        if isinstance(event, dict) and event.get("request_id") == request_id:
                            found.append(event)
        return found
