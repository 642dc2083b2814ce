"""The test gate's load test: locust, headless, against the deployed URL, judged by config."""

import csv
import subprocess
import sys
from pathlib import Path

from delivery.source import ROOT
from gates.checks import CheckResult, timed
from settings.schema import LoadTestSettings

LOCUSTFILE = ROOT / "tests" / "load" / "locustfile.py"
# Locust's own start-up and shutdown on top of the run time.
OVERHEAD_SECONDS = 120


def run_load_test(base_url: str, load: LoadTestSettings, reports: Path, root: Path) -> CheckResult:
    result = CheckResult("load")
    prefix = reports / "locust"
    html = reports / "locust.html"
    log = reports / "locust.log"
    argv = [
        sys.executable, "-m", "locust", "--locustfile", str(LOCUSTFILE), "--headless",
        "--host", base_url, "--users", str(load.users), "--spawn-rate", str(load.spawn_rate),
        "--run-time", f"{load.run_time_seconds}s", "--stop-timeout", "10",
        "--csv", str(prefix), "--html", str(html), "--only-summary", "--loglevel", "WARNING",
    ]  # fmt: skip
    with timed(result), log.open("wb") as output:
        try:
            code = subprocess.run(  # noqa: S603
                argv, cwd=ROOT, stdout=output, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                timeout=load.run_time_seconds + OVERHEAD_SECONDS, check=False,
            ).returncode  # fmt: skip
        except subprocess.TimeoutExpired:
            code = None
    for path in (log, html, Path(f"{prefix}_stats.csv"), Path(f"{prefix}_failures.csv")):
        if path.exists():
            result.reports.append(str(path.relative_to(root)))

    stats = Path(f"{prefix}_stats.csv")
    if not stats.exists():
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-15:])
        result.fail(f"locust wrote no statistics (exit {code}):\n{tail}")
        return result
    result.figures = aggregated_figures(stats)
    result.figures["users"] = load.users
    result.figures["run_time_seconds"] = load.run_time_seconds
    for failure in judge(result.figures, load):
        result.fail(failure)
    return result


def aggregated_figures(stats_csv: Path) -> dict[str, float]:
    """The "Aggregated" row of locust's <prefix>_stats.csv."""
    with stats_csv.open(newline="") as handle:
        rows = [row for row in csv.DictReader(handle) if row["Name"] == "Aggregated"]
    if not rows:
        return {"requests": 0, "failures": 0, "failure_ratio": 0.0, "rps": 0.0,
                "median_ms": 0.0, "p95_ms": 0.0, "p99_ms": 0.0, "max_ms": 0.0}  # fmt: skip
    row = rows[0]
    requests = int(row["Request Count"])
    failures = int(row["Failure Count"])

    def number(column: str) -> float:
        value = row[column]
        return 0.0 if value in ("", "N/A") else round(float(value), 2)

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


def judge(figures: dict[str, float], load: LoadTestSettings) -> list[str]:
    """One message per breached threshold, naming the threshold and the measured value."""
    failures = []
    if figures["requests"] == 0:
        return ["the load test made no request"]
    if figures["failure_ratio"] > load.max_failure_ratio:
        failures.append(
            f"failure ratio {figures['failure_ratio']:.4f} ({figures['failures']} of "
            f"{figures['requests']}) is above max_failure_ratio {load.max_failure_ratio}"
        )
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
