"""Gate evidence: the typed record of one gate run (sentiment_release/gates/evidence_store.py keeps
them, signed).

An id is "<UTC time>-<gate>-<12 hex of what was checked>", so names sort by time.
"""

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from sentiment.serving.settings.schema import EnvironmentName
from sentiment_release.gates.subject import Subject
from sentiment_release.support.clock import Timestamp
from sentiment_release.support.errors import ReleaseError
from sentiment_release.support.records import Record

# The gate after a rollback: its checks run in the environment rolled back, whose key
# signs its record. Every other gate is an environment's own, signed with that one's key.
ROLLBACK_GATE = "rollback"
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
    # A promotion's or rollback's gate: the hash of the ledger entry it followed (the
    # "deploying" one), which the signature then vouches for (sentiment_release/promotion/rules.py).
    ledger_head: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")

    @property
    def passed(self) -> bool:
        return self.result == "passed"
