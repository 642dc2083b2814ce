"""`pytest`: a test suite run by pytest, against the deployed service when the gate has
one (`--base-url`); `smoke`: the smoke suite, which also checks that the service is the
build the subject names. Both pass only when pytest exits 0 and a test passed."""

import sys
import xml.etree.ElementTree as ElementTree
from pathlib import Path
from typing import Any

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


class PytestOptions(CheckOptions):
    # pytest arguments: test paths, -k expressions, options of the suite.
    args: list[str] = Field(min_length=1)
    timeout_seconds: int = Field(default=1800, ge=1, le=7200)
    # True for a suite that tests the deployed service (it gets --base-url): it cannot
    # run before an image exists, and it counts as checking the service.
    needs_service: bool = False


class SmokeOptions(CheckOptions):
    args: list[str] = Field(default=["tests/smoke"], min_length=1)
    timeout_seconds: int = Field(default=300, ge=1, le=7200)


def junit_counts(path: Path) -> dict[str, int]:
    """tests, passed, failed, errors, skipped from a junit XML report (zeros when absent)."""
    counts = dict.fromkeys(("tests", "passed", "failed", "errors", "skipped"), 0)
    try:
        # A check writes it: read as a file of its own, never through a link.
        root = ElementTree.fromstring(read_regular_file(path))  # noqa: S314
    except (OSError, ElementTree.ParseError):
        return counts
    suites = [root] if root.tag == "testsuite" else root.findall("testsuite")
    for suite in suites:
        counts["tests"] += int(suite.get("tests", 0))
        counts["failed"] += int(suite.get("failures", 0))
        counts["errors"] += int(suite.get("errors", 0))
        counts["skipped"] += int(suite.get("skipped", 0))
    counts["passed"] = counts["tests"] - counts["failed"] - counts["errors"] - counts["skipped"]
    return counts


@register
class Pytest(Check):
    kind = "pytest"
    Options = PytestOptions

    @property
    def needs_service(self) -> bool:  # type: ignore[override]
        return self.options.needs_service

    def pytest_args(self, context: GateContext) -> list[str]:
        args = list(self.options.args)
        return [*args, "--base-url", context.url] if context.url else args

    def check(self, context: GateContext, result: CheckResult) -> None:
        junit = context.reports / f"{self.name}.junit.xml"
        log = context.reports / f"{self.name}.log"
        args = self.pytest_args(context)
        argv = [
            sys.executable, "-m", "pytest", *args, f"--junitxml={junit}",
            "-p", "no:cacheprovider", "-q", "--no-header",
        ]  # fmt: skip
        # Only a suite that calls the service needs the key (a lint suite in stage does not).
        env = context.api_key_env if self.needs_service else None
        code = context.run(argv, log, self.options.timeout_seconds, env)
        counts = junit_counts(junit)
        result.figures.update(counts)
        result.reports.append(context.report(log))
        if junit.exists():
            result.reports.append(context.report(junit))
        shown = " ".join(self.options.args)
        if code != 0:
            why = "timed out" if code is None else f"exited {code}"
            result.fail(f"pytest {shown} {why}:\n{tail(log)}")
        elif counts["passed"] == 0:
            result.fail(f"pytest {shown} passed no test (all skipped or none collected)")

    @classmethod
    def summary(cls, name: str, figures: dict[str, Any]) -> str:
        if "tests" not in figures:
            return name
        return f"{name} {figures['passed']}/{figures['tests']} passed"


@register
class Smoke(Pytest):
    kind = "smoke"
    Options = SmokeOptions

    @property
    def needs_service(self) -> bool:  # type: ignore[override]
        return True

    def pytest_args(self, context: GateContext) -> list[str]:
        return [
            *self.options.args, "--base-url", context.service_url,
            "--expected-model-sha256", context.subject.model_sha256,
            "--expected-environment", context.environment,
        ]  # fmt: skip
