"""Gate evidence: one typed record per gate run, append-only, and the reports it points to.

Layout under the evidence directory:
    <id>.json            one record, created once and never rewritten
    reports/<id>/        junit XML, locust CSV/HTML, logs of that gate run

An id is "<UTC time>-<gate>-<12 hex of what was checked>", so names sort by time.
"""

import re
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from gates.subject import Subject
from service.settings.schema import EnvironmentName
from support.clock import Timestamp, compact
from support.errors import ReleaseError
from support.files import create_new
from support.records import Record, read_record

ID_PATTERN = re.compile(r"^\d{8}T\d{12}Z-[a-z][a-z0-9-]*-[0-9a-f]{12}$")
Result = Literal["passed", "failed"]


class EvidenceError(ReleaseError):
    pass


class CheckRecord(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    # The kind of check (config/promotion.yaml `check:`) and the options it ran with.
    check: str | None = None
    options: dict[str, Any] = Field(default_factory=dict)
    result: Result
    seconds: float
    figures: dict[str, Any]
    failures: list[str]
    # Report files, relative to the evidence directory.
    reports: list[str]


class EvidenceRecord(Record):
    id: str = Field(pattern=ID_PATTERN.pattern)
    gate: EnvironmentName
    environment: EnvironmentName
    subject: Subject
    url: str | None
    config_sha256: str | None
    checked_from_commit: str
    started_at: Timestamp
    finished_at: Timestamp
    seconds: float
    result: Result
    checks: list[CheckRecord]
    failures: list[str]
    reports_dir: str
    actor: str
    ci_run: str | None

    @property
    def passed(self) -> bool:
        return self.result == "passed"


class EvidenceStore:
    def __init__(self, root: Path):
        self.root = root

    def new_id(self, gate: str, key: str, moment: datetime) -> str:
        """A fresh id; `key` is the digest or tree the gate checked."""
        return f"{compact(moment)}-{gate}-{key.removeprefix('sha256:')[:12]}"

    def reports_dir(self, evidence_id: str) -> Path:
        path = self.root / "reports" / evidence_id
        path.mkdir(parents=True, exist_ok=True)
        return path

    def append(self, record: EvidenceRecord) -> Path:
        """Writes a new record; an existing one is never replaced."""
        path = self.root / f"{record.id}.json"
        try:
            create_new(path, (record.to_json() + "\n").encode("utf-8"))
        except FileExistsError:
            raise EvidenceError(
                f"evidence {record.id} exists already; it is never rewritten"
            ) from None
        return path

    def get(self, evidence_id: str) -> EvidenceRecord:
        if not ID_PATTERN.fullmatch(evidence_id):
            raise EvidenceError(f"{evidence_id!r} is not an evidence id")
        path = self.root / f"{evidence_id}.json"
        record = read_record(EvidenceRecord, path)
        if record is None:
            raise EvidenceError(f"no evidence {evidence_id} in {self.root}")
        if record.id != evidence_id:
            raise EvidenceError(f"{path} holds the record of {record.id}, not of {evidence_id}")
        return record

    def records(self) -> list[EvidenceRecord]:
        """Every record, oldest first."""
        if not self.root.is_dir():
            return []
        names = sorted(p.stem for p in self.root.glob("*.json") if ID_PATTERN.fullmatch(p.stem))
        return [self.get(name) for name in names]

    def latest(self, gate: str, **subject: str | None) -> EvidenceRecord | None:
        """The newest record of `gate` whose subject has all the given fields."""
        for record in reversed(self.records()):
            if record.gate == gate and all(
                getattr(record.subject, field) == value for field, value in subject.items()
            ):
                return record
        return None
