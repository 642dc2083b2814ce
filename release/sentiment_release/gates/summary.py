"""Gate records in a few words: a line of key figures, a Markdown table for job summaries."""

from sentiment_release.gates.checks import CHECKS
from sentiment_release.gates.evidence import EvidenceRecord


def describe(record: EvidenceRecord) -> str:
    """One line of the key figures of a gate record: each check summarises its own."""
    parts = []
    for check in record.checks:
        kind = CHECKS.get(check.check or check.name)
        text = kind.summary(check.name, check.figures) if kind else check.name
        parts.append(text if check.result == "passed" else f"{text} FAILED")
    return "; ".join(parts)


def markdown_table(records: list[EvidenceRecord], title: str) -> str:
    """Gate records as a Markdown table, for CI job summaries."""
    lines = [f"## {title}", "", "| Evidence | Gate | Environment | Image | Result | Key figures |",
             "|---|---|---|---|---|---|"]  # fmt: skip
    for record in records:
        digest = record.subject.digest or f"tree {record.subject.source_tree}"
        figures = describe(record).replace("|", "\\|")
        result = "✅ passed" if record.passed else "❌ failed"
        lines.append(f"| `{record.id}` | {record.gate} | {record.environment} | "
                     f"`{digest[:19]}` | {result} | {figures} |")  # fmt: skip
    if not records:
        lines.append("| (none) | | | | | |")
    return "\n".join(lines) + "\n"
