"""What a locust run measured, from its CSV files: overall, per endpoint, per stage."""

import csv
from pathlib import Path
from typing import Any

from sentiment_release.gates.checks.load import aggregated_figures, csv_number
from sentiment_release.loadtest.profiles import Profile


def endpoint_figures(stats_csv: Path) -> list[dict[str, Any]]:
    """One row per endpoint (locust's name for it), busiest first."""
    with stats_csv.open(newline="") as handle:
        rows = [row for row in csv.DictReader(handle) if row["Name"] != "Aggregated"]
    found = [{
        "name": f"{row['Type']} {row['Name']}",
        "requests": int(row["Request Count"]),
        "failures": int(row["Failure Count"]),
        "median_ms": csv_number(row["Median Response Time"]),
        "p95_ms": csv_number(row["95%"]),
        "p99_ms": csv_number(row["99%"]),
    } for row in rows]  # fmt: skip
    return sorted(found, key=lambda row: -row["requests"])


def stage_figures(history_csv: Path, profile: Profile) -> list[dict[str, Any]]:
    """Per stage: the users at its end, requests/s and failures/s over the stage (from the
    running totals), and the worst p95 and p99 locust saw in it (over its sliding window)."""
    with history_csv.open(newline="") as handle:
        rows = [row for row in csv.DictReader(handle) if row["Name"] == "Aggregated"]
    if not rows:
        return []
    started = float(rows[0]["Timestamp"])
    found = []
    begin = 0.0
    # Counted from the last row before the stage: its first second is its own.
    before = rows[0]
    for number, stage in enumerate(profile.stages, start=1):
        end = begin + stage.seconds
        inside = [row for row in rows if begin <= float(row["Timestamp"]) - started < end]
        begin = end
        if not inside:
            continue
        first, last = before, inside[-1]
        before = last
        seconds = float(last["Timestamp"]) - float(first["Timestamp"])
        requests = int(last["Total Request Count"]) - int(first["Total Request Count"])
        failures = int(last["Total Failure Count"]) - int(first["Total Failure Count"])
        p95 = [value for row in inside if (value := csv_number(row["95%"])) is not None]
        p99 = [value for row in inside if (value := csv_number(row["99%"])) is not None]
        found.append({
            "stage": number,
            "users": int(last["User Count"]),  # where the stage left it
            "rps": round(requests / seconds, 1) if seconds > 0 else 0.0,
            "failures_per_second": round(failures / seconds, 2) if seconds > 0 else 0.0,
            "worst_p95_ms": max(p95, default=None),
            "worst_p99_ms": max(p99, default=None),
        })  # fmt: skip
    return found


def run_figures(prefix: Path, profile: Profile) -> dict[str, Any]:
    """Everything the summary holds, from <prefix>_stats.csv and _stats_history.csv."""
    stats = Path(f"{prefix}_stats.csv")
    history = Path(f"{prefix}_stats_history.csv")
    return {
        "overall": aggregated_figures(stats),
        "endpoints": endpoint_figures(stats),
        "stages": stage_figures(history, profile) if history.exists() else [],
        "seconds": measured_seconds(history) if history.exists() else None,
    }


def measured_seconds(history_csv: Path) -> float | None:
    """From locust's first to its last sample: the run, without start-up or the time a
    web UI stays open after it."""
    with history_csv.open(newline="") as handle:
        times = [float(row["Timestamp"]) for row in csv.DictReader(handle)
                 if row["Name"] == "Aggregated" and int(row["User Count"]) > 0]  # fmt: skip
    return times[-1] - times[0] + 1 if times else None
