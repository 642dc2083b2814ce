"""`capacity`: how many single-review requests the service sustains, measured, and judged
against the release now in prod.

Locust's fast client sends requests back to back (no think time) from `users` clients:
the rate they get is the service's, as long as its p99 stays within `max_p99_ms` (past
that it is not a rate the service sustains). The figure must not fall more than
`max_drop` below what the same check measured on the current release (the evidence its
promotion relied on, looked up by the promoter; only when measured the same way: same
load settings, same locustfile), nor ever below `min_rps`. A `load` check with think time
measures the users, not the service: a release twice as slow would pass it.
"""

import hashlib
from pathlib import Path
from typing import Any

from pydantic import Field

from sentiment_release.gates.checks.base import (
    Baseline,
    Check,
    CheckOptions,
    CheckResult,
    GateContext,
    register,
)
from sentiment_release.gates.checks.load import run_locust, too_many_failures


class CapacityOptions(CheckOptions):
    users: int = Field(ge=1, le=1000)
    # Every client at once by default: the measured window is all full load.
    spawn_rate: float = Field(default=1000, gt=0, le=10_000)
    run_time_seconds: int = Field(ge=1, le=3600)
    max_p99_ms: float = Field(gt=0)
    max_failure_ratio: float = Field(default=0.0, ge=0, le=1)
    # The largest share below the current release's capacity that still passes.
    max_drop: float = Field(default=0.15, ge=0, lt=1)
    # The floor in any case, and the whole bar when there is no release to compare with.
    min_rps: float = Field(gt=0)
    locustfile: str = "tests/load/locustfile.py"
    user_class: str = Field(default="CapacityClient", pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")


# What makes two runs the same measurement: the thresholds may change, these may not.
MEASUREMENT = ("users", "spawn_rate", "run_time_seconds", "locustfile", "user_class")


def incomparable(baseline: Baseline, options: CapacityOptions, figures: dict[str, Any]) -> str:
    """Why `baseline` was not measured as this run is ("" when it was): another kind,
    other load settings, or another locustfile (lighter requests would hide a slowdown)."""
    if baseline.kind != Capacity.kind:
        return f"measured by a {baseline.kind} check"
    changed = [key for key in MEASUREMENT if baseline.options.get(key) != getattr(options, key)]
    if changed:
        return f"measured with other {', '.join(changed)}"
    if baseline.figures.get("locustfile_sha256") != figures["locustfile_sha256"]:
        return f"measured with another {options.locustfile}"
    return ""


def file_sha256(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


@register
class Capacity(Check):
    kind = "capacity"
    Options = CapacityOptions
    needs_service = True

    def check(self, context: GateContext, result: CheckResult) -> None:
        options: CapacityOptions = self.options
        figures = run_locust(context, result, self.name, options)
        if figures is None:
            return
        figures["locustfile_sha256"] = file_sha256(context.project.root / options.locustfile)
        baseline = context.baseline(self.name)
        required, basis = options.min_rps, f"min_rps {options.min_rps:.12g}"
        if baseline is not None and (why := incomparable(baseline, options, figures)):
            figures["baseline_ignored"] = f"{baseline.evidence}: {why}"
            baseline = None
        if baseline is not None and baseline.figures.get("rps"):
            measured_before = float(baseline.figures["rps"])
            relative = measured_before * (1 - options.max_drop)
            figures["baseline_rps"] = measured_before
            figures["baseline_evidence"] = baseline.evidence
            figures["baseline_release"] = baseline.release
            if relative > required:
                required = relative
                basis = (
                    f"{measured_before:.1f} requests/s of the current release "
                    f"{baseline.release} less max_drop {options.max_drop:.0%}"
                )
        figures["required_rps"] = round(required, 1)
        result.figures = figures
        if figures["requests"] == 0:
            result.fail("the capacity test made no request")
            return
        if figures["failure_ratio"] > options.max_failure_ratio:
            result.fail(too_many_failures(figures, options.max_failure_ratio))
        if figures["p99_ms"] > options.max_p99_ms:
            result.fail(
                f"p99 {figures['p99_ms']:.0f} ms at {options.users} clients is above "
                f"max_p99_ms {options.max_p99_ms:.12g}: not a rate the service sustains"
            )
        if figures["rps"] < required:
            result.fail(f"{figures['rps']:.1f} requests/s is below {required:.1f} ({basis})")

    @classmethod
    def summary(cls, name: str, figures: dict[str, Any]) -> str:
        if "rps" not in figures:
            return name
        against = (
            f" vs {figures['baseline_rps']:.0f} on {figures['baseline_release']}"
            if "baseline_rps" in figures
            else ""
        )
        return f"{name} {figures['rps']:.0f} rps{against}, p99 {figures['p99_ms']:.0f} ms"
