"""Load-test runs kept beside the environments' evidence (.delivery/loadtests/<target>/
<time>-<profile>/: locust's report and CSVs, summary.json, summary.md), and the earlier
run a new one is compared with."""

import re
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import Field

from sentiment_release.support.clock import Timestamp, compact
from sentiment_release.support.records import Record, RecordError, read_record

SUMMARY = "summary.json"


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

    def previous(self, current: LoadTestSummary, before: Path) -> Previous | None:
        """The newest earlier run of the same profile (same stages) against the same
        target and URL that left a summary: only such a run measured the same thing."""
        target, profile = current.target, current.profile
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
            if summary is not None and (summary.profile, summary.url, summary.stages) == (
                profile,
                current.url,
                current.stages,
            ):
                return path, summary
        return None
