"""Load-test runs kept beside the environments' evidence (.delivery/loadtests/<target>/
<time>-<profile>/: locust's report and CSVs, summary.json, summary.md), and the table that
compares a run with the previous one of its profile and with its release's gate figures."""

import re
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import Field

from support.clock import Timestamp, compact
from support.records import Record, RecordError, read_record

SUMMARY = "summary.json"
# (label, key, unit): the figures the table compares, in its order.
COMPARED = [
    ("requests/s", "rps", ""),
    ("median", "median_ms", " ms"),
    ("p95", "p95_ms", " ms"),
    ("p99", "p99_ms", " ms"),
    ("max", "max_ms", " ms"),
    ("failures", "failure_ratio", ""),
    ("requests", "requests", ""),
]


class LoadTestSummary(Record):
    target: str
    url: str
    environment: str | None
    # The image the environment ran (a deployment of this machine), if known.
    image: str | None
    model_version: str | None
    profile: str
    description: str
    stages: list[dict[str, Any]]
    user_class: str
    reviews: str
    started_at: Timestamp
    seconds: float
    overall: dict[str, float]
    endpoints: list[dict[str, Any]]
    stage_figures: list[dict[str, Any]]
    breaches: list[str]
    # The run it was compared with (its directory), and the gate figures.
    previous: str | None = None
    gate_figures: list[dict[str, Any]] = Field(default_factory=list)


def target_directory_name(name: str) -> str:
    """A file-safe name for a target: an environment's own, else url-<host>-<port>."""
    return re.sub(r"[^a-z0-9.-]+", "-", name.lower()).strip("-.") or "target"


# An earlier run: its directory and its summary.
Previous = tuple[Path, LoadTestSummary]


class LoadTestRuns:
    def __init__(self, root: Path):
        self.root = root

    def new_run(self, target: str, profile: str, moment: datetime) -> Path:
        directory = self.root / target_directory_name(target) / f"{compact(moment)}-{profile}"
        directory.mkdir(parents=True)
        return directory

    def previous(self, target: str, profile: str, before: Path) -> Previous | None:
        """The newest earlier run of `profile` against `target` that left a summary."""
        directory = self.root / target_directory_name(target)
        earlier = sorted(
            (path for path in directory.glob(f"*-{profile}") if path.name < before.name),
            reverse=True,
        )
        for path in earlier:
            try:
                summary = read_record(LoadTestSummary, path / SUMMARY)
            except RecordError:
                continue  # a damaged summary is skipped, never compared with
            if summary is not None and summary.profile == profile:
                return path, summary
        return None


def _format(key: str, value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    if key == "failure_ratio":
        return f"{value:.2%}"
    if key == "requests":
        return f"{value:,.0f}"
    return f"{value:,.1f}{unit}" if key == "rps" else f"{value:,.0f}{unit}"


def _delta(key: str, now: float, then: float | None) -> str:
    if then is None:
        return "-"
    if key == "failure_ratio":
        return f"{(now - then) * 100:+.2f} pt"
    if then == 0:
        return "-" if now == 0 else "new"
    return f"{(now - then) / then:+.1%}"


def comparison_table(summary: LoadTestSummary, previous: Previous | None) -> str:
    """Markdown: this run's figures, the previous run's and the gate figures, with deltas."""
    headers = ["figure", "this run"]
    columns: list[tuple[str, dict[str, Any]]] = []
    if previous is not None:
        path, before = previous
        columns.append((f"previous {before.profile} run ({path.name[:15]})", before.overall))
    for gate in summary.gate_figures:
        columns.append((gate["label"], gate["figures"]))
    for title, _ in columns:
        headers += [title, "Δ"]
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    for label, key, unit in COMPARED:
        now = summary.overall.get(key, 0.0)
        cells = [label, _format(key, now, unit)]
        for _, figures in columns:
            then = figures.get(key)
            cells += [_format(key, then, unit), _delta(key, now, then)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def stage_table(summary: LoadTestSummary) -> str:
    if len(summary.stage_figures) < 2:
        return ""
    lines = ["| stage | users | requests/s | failures/s | worst p95 | worst p99 |",
             "|---|---|---|---|---|---|"]  # fmt: skip
    for stage in summary.stage_figures:
        lines.append(
            f"| {stage['stage']} | {stage['users']} | {stage['rps']:,.1f} | "
            f"{stage['failures_per_second']:.2f} | {stage['worst_p95_ms']:,.0f} ms | "
            f"{stage['worst_p99_ms']:,.0f} ms |"
        )
    return "\n".join(lines) + "\n"


def endpoint_table(endpoints: list[dict[str, Any]]) -> str:
    lines = ["| endpoint | requests | failures | median | p95 | p99 |", "|---|---|---|---|---|---|"]
    for row in endpoints:
        lines.append(
            f"| {row['name']} | {row['requests']:,} | {row['failures']:,} | "
            f"{row['median_ms']:,.0f} ms | {row['p95_ms']:,.0f} ms | {row['p99_ms']:,.0f} ms |"
        )
    return "\n".join(lines) + "\n"


def markdown(summary: LoadTestSummary, previous: Previous | None) -> str:
    """The run's summary as the CLI prints it and a CI job summary shows it."""
    what = summary.environment or summary.url
    image = f", image {summary.image[:19]}" if summary.image else ""
    model = f", model {summary.model_version}" if summary.model_version else ""
    parts = [
        f"### Load test `{summary.profile}` against {what}{image}{model}\n",
        f"{summary.description} {summary.seconds:.0f} s, {summary.user_class} clients, "
        f"{summary.reviews}.\n",
        comparison_table(summary, previous),
    ]
    if table := stage_table(summary):
        parts.append(table)
    if summary.endpoints:
        parts.append(endpoint_table(summary.endpoints[:6]))
    if previous is None:
        parts.append(f"No earlier `{summary.profile}` run against this target to compare with.\n")
    if not summary.gate_figures:
        parts.append("No gate figures: the target's image is not known here, or no gate "
                     "measured it.\n")  # fmt: skip
    verdict = ("**Breached:** " + "; ".join(summary.breaches)) if summary.breaches else (
        "Within the profile's thresholds.")  # fmt: skip
    parts.append(verdict + "\n")
    return "\n".join(parts)
