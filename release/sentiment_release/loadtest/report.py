"""A load-test run as a table: its figures against the previous run of its profile and
the gate figures of its release, per stage and per endpoint (Markdown: the CLI prints it,
a CI job summary shows it)."""

from typing import Any

from sentiment_release.delivery.references import digest_of
from sentiment_release.loadtest.runs import LoadTestSummary, Previous

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
            f"{stage['failures_per_second']:.2f} | {_ms(stage['worst_p95_ms'])} | "
            f"{_ms(stage['worst_p99_ms'])} |"
        )
    return "\n".join(lines) + "\n"


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f} ms"


def endpoint_table(endpoints: list[dict[str, Any]]) -> str:
    lines = ["| endpoint | requests | failures | median | p95 | p99 |", "|---|---|---|---|---|---|"]
    for row in endpoints:
        lines.append(
            f"| {row['name']} | {row['requests']:,} | {row['failures']:,} | "
            f"{_ms(row['median_ms'])} | {_ms(row['p95_ms'])} | {_ms(row['p99_ms'])} |"
        )
    return "\n".join(lines) + "\n"


def markdown(summary: LoadTestSummary, previous: Previous | None) -> str:
    """The run's summary as the CLI prints it and a CI job summary shows it."""
    what = summary.environment or summary.url
    image = f", image {digest_of(summary.image)[:19]}" if summary.image else ""
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
