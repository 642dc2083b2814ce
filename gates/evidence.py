"""Gate evidence: one JSON record per gate run, append-only, and the reports it points to.

Layout under the evidence directory:
    <id>.json            one record, created once and never rewritten
    reports/<id>/        junit XML, locust CSV/HTML, logs of that gate run

An id is "<UTC time>-<gate>-<12 hex of what was checked>", so names sort by time.
"""

import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from atomic_files import create_new
from delivery.errors import DeliveryError

ID_PATTERN = re.compile(r"^\d{8}T\d{12}Z-[a-z]+-[0-9a-f]{12}$")


def utc_now() -> datetime:
    return datetime.now(UTC)


def timestamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class EvidenceStore:
    def __init__(self, root: Path):
        self.root = root

    def new_id(self, gate: str, key: str, moment: datetime) -> str:
        """A fresh id; `key` is the digest or tree the gate checked."""
        hex_key = key.removeprefix("sha256:")[:12]
        return f"{moment:%Y%m%dT%H%M%S%f}Z-{gate}-{hex_key}"

    def reports_dir(self, evidence_id: str) -> Path:
        path = self.root / "reports" / evidence_id
        path.mkdir(parents=True, exist_ok=True)
        return path

    def append(self, record: dict[str, Any]) -> Path:
        """Writes a new record; an existing one is never replaced."""
        path = self.root / f"{record['id']}.json"
        text = json.dumps(record, indent=2, sort_keys=True) + "\n"
        try:
            create_new(path, text.encode("utf-8"))
        except FileExistsError:
            raise DeliveryError(
                f"evidence {record['id']} exists already; it is never rewritten"
            ) from None
        return path

    def get(self, evidence_id: str) -> dict[str, Any]:
        if not ID_PATTERN.match(evidence_id):
            raise DeliveryError(f"{evidence_id!r} is not an evidence id")
        path = self.root / f"{evidence_id}.json"
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise DeliveryError(f"no evidence {evidence_id} in {self.root}") from None
        except ValueError as error:
            raise DeliveryError(f"evidence {path} is damaged: {error}") from None

    def records(self) -> list[dict[str, Any]]:
        """Every record, oldest first."""
        if not self.root.is_dir():
            return []
        names = sorted(p.stem for p in self.root.glob("*.json") if ID_PATTERN.match(p.stem))
        return [self.get(name) for name in names]

    def latest(self, gate: str, **subject: str) -> dict[str, Any] | None:
        """The newest record of `gate` whose subject has all the given fields."""
        for record in reversed(self.records()):
            if record["gate"] == gate and all(
                record["subject"].get(field) == value for field, value in subject.items()
            ):
                return record
        return None


def describe(record: dict[str, Any]) -> str:
    """One line of the key figures of a gate record, for tables and job summaries."""
    parts = []
    for check in record["checks"]:
        figures = check["figures"]
        name = check["name"]
        if "tests" in figures:
            text = f"{name} {figures['passed']}/{figures['tests']} passed"
        elif name == "load" and "requests" in figures:
            text = (
                f"load {figures['requests']} req, {figures['rps']:.1f} rps, "
                f"p95 {figures['p95_ms']:.0f} ms, p99 {figures['p99_ms']:.0f} ms, "
                f"{figures['failures']} failed"
            )
        elif name == "quality" and figures:
            text = f"accuracy {figures['accuracy']:.3f}, f1 {figures['f1']:.3f}"
        elif name == "skew" and figures:
            text = (
                f"skew max {figures['max_score_difference']:.1e} over {figures['reviews']} held-out"
            )
        elif name == "latency" and figures:
            text = f"latency p95 {figures['p95_ms']:.0f} ms"
        else:
            text = name
        parts.append(text if check["result"] == "passed" else f"{text} FAILED")
    return "; ".join(parts)


def markdown_table(records: list[dict[str, Any]], title: str) -> str:
    """Gate records as a Markdown table, for CI job summaries."""
    lines = [f"## {title}", "", "| Evidence | Gate | Environment | Image | Result | Key figures |",
             "|---|---|---|---|---|---|"]  # fmt: skip
    for record in records:
        digest = record["subject"].get("digest") or f"tree {record['subject']['source_tree']}"
        figures = describe(record).replace("|", "\\|")
        result = "✅ passed" if record["result"] == "passed" else "❌ failed"
        lines.append(f"| `{record['id']}` | {record['gate']} | {record['environment']} | "
                     f"`{digest[:19]}` | {result} | {figures} |")  # fmt: skip
    if not records:
        lines.append("| (none) | | | | | |")
    return "\n".join(lines) + "\n"
