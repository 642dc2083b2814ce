"""`load`: locust, headless, against the deployed service, judged by the check's thresholds."""

import csv
import io
import sys
from pathlib import Path
from typing import Any, Protocol

from pydantic import Field

from sentiment_release.gates.checks.base import (
    Check,
    CheckOptions,
    CheckResult,
    GateContext,
    register,
)
from sentiment_release.support.files import read_regular_file
from sentiment_release.support.process import tail

# Locust's own start-up and shutdown on top of the run time.
OVERHEAD_SECONDS = 120


class LoadOptions(CheckOptions):
    users: int = Field(ge=1, le=10_000)
    spawn_rate: float = Field(gt=0, le=10_000)
    run_time_seconds: int = Field(ge=1, le=3600)
    max_failure_ratio: float = Field(ge=0, le=1)
    max_p95_ms: float = Field(gt=0)
    max_p99_ms: float = Field(gt=0)
    min_rps: float = Field(ge=0)
    locustfile: str = "tests/load/locustfile.py"
    # The locustfile's user class: clients with think time.
    user_class: str = Field(default="ApiClient", pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")


@register
class Load(Check):
    kind = "load"
    Options = LoadOptions
    needs_service = True

    def check(self, context: GateContext, result: CheckResult) -> None:
        load: LoadOptions = self.options
        figures = run_locust(context, result, self.name, load)
        if figures is None:
            return
        result.figures = figures
        for failure in judge(result.figures, load):
            result.fail(failure)

    @classmethod
    def summary(cls, name: str, figures: dict[str, Any]) -> str:
        if "rps" not in figures:
            return name
        return (
            f"{name} {figures['requests']} req, {figures['rps']:.1f} rps, "
            f"p95 {figures['p95_ms']:.0f} ms, p99 {figures['p99_ms']:.0f} ms, "
            f"{figures['failures']} failed"
        )


class LocustRun(Protocol):
    users: int
    spawn_rate: float
    run_time_seconds: int
    locustfile: str
    user_class: str


def locust_command(
    locustfile: str, host: str, prefix: Path, html: Path, user_class: str, how: list[str]
) -> list[str]:
    """locust against `host`, its CSVs at `prefix`_*.csv and its report at `html`; `how`
    says how it runs (headless for so long, or with a shape and a web UI)."""
    return [
        sys.executable, "-m", "locust", "--locustfile", locustfile, "--host", host,
        "--csv", str(prefix), "--html", str(html), "--stop-timeout", "10",
        "--loglevel", "WARNING", *how, user_class,
    ]  # fmt: skip


def csv_number(value: str) -> float | None:
    """A figure of locust's CSVs; None where it has none ("", "N/A")."""
    return None if value in ("", "N/A") else float(value)


def run_locust(
    context: GateContext, result: CheckResult, name: str, run: LocustRun
) -> dict[str, Any] | None:
    """Locust, headless, against the service; the aggregated figures, or None (and a
    failed result) when it measured nothing. Reports are named after the check, so two
    locust checks in one gate keep their own."""
    prefix = context.reports / name
    html = context.reports / f"{name}.html"
    log = context.reports / f"{name}.log"
    argv = locust_command(
        run.locustfile, context.service_url, prefix, html, run.user_class,
        ["--headless", "--only-summary", "--users", str(run.users), "--spawn-rate",
         str(run.spawn_rate), "--run-time", f"{run.run_time_seconds}s"],
    )  # fmt: skip
    code = context.run(argv, log, run.run_time_seconds + OVERHEAD_SECONDS, context.api_key_env)
    stats = Path(f"{prefix}_stats.csv")
    for path in (log, html, stats, Path(f"{prefix}_failures.csv")):
        if path.exists():
            result.reports.append(context.report(path))
    if not stats.exists():
        result.fail(f"locust wrote no statistics (exit {code}):\n{tail(log)}")
        return None
    return {
        **aggregated_figures(stats),
        "users": run.users,
        "run_time_seconds": run.run_time_seconds,
    }


def aggregated_figures(stats_csv: Path) -> dict[str, float]:
    """The "Aggregated" row of locust's <prefix>_stats.csv."""
    try:  # locust writes it, in the check's folder: never read through a link
        text = read_regular_file(stats_csv).decode("utf-8", errors="replace")
    except OSError:
        text = ""
    rows = [
        row
        for row in csv.DictReader(io.StringIO(text, newline=""))
        if row.get("Name") == "Aggregated"
    ]
    if not rows:
        return {"requests": 0, "failures": 0, "failure_ratio": 0.0, "rps": 0.0,
                "median_ms": 0.0, "p95_ms": 0.0, "p99_ms": 0.0, "max_ms": 0.0}  # fmt: skip
    row = rows[0]
    requests = int(row["Request Count"])
    failures = int(row["Failure Count"])

    def number(column: str) -> float:
        value = csv_number(row[column])
        return 0.0 if value is None else round(value, 2)

    return {
        "requests": requests,
        "failures": failures,
        "failure_ratio": round(failures / requests, 6) if requests else 0.0,
        "rps": number("Requests/s"),
        "median_ms": number("Median Response Time"),
        "p95_ms": number("95%"),
        "p99_ms": number("99%"),
        "max_ms": number("Max Response Time"),
    }


def too_many_failures(figures: dict[str, Any], max_failure_ratio: float) -> str:
    return (
        f"failure ratio {figures['failure_ratio']:.4f} ({figures['failures']} of "
        f"{figures['requests']}) is above max_failure_ratio {max_failure_ratio}"
    )


def judge(figures: dict[str, float], load: LoadOptions) -> list[str]:
    """One message per breached threshold, naming the threshold and the measured value."""
    failures = []
    if figures["requests"] == 0:
        return ["the load test made no request"]
    if figures["failure_ratio"] > load.max_failure_ratio:
        failures.append(too_many_failures(figures, load.max_failure_ratio))
    if figures["p95_ms"] > load.max_p95_ms:
        failures.append(
            f"p95 {figures['p95_ms']:.0f} ms is above max_p95_ms {load.max_p95_ms:.12g}"
        )
    if figures["p99_ms"] > load.max_p99_ms:
        failures.append(
            f"p99 {figures['p99_ms']:.0f} ms is above max_p99_ms {load.max_p99_ms:.12g}"
        )
    if figures["rps"] < load.min_rps:
        failures.append(f"{figures['rps']:.1f} requests/s is below min_rps {load.min_rps:.12g}")
    return failures
