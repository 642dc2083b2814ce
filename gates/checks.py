"""The checks gates are made of. Each returns a CheckResult; none raises for a failed check."""

import subprocess
import sys
import time
import xml.etree.ElementTree as ElementTree
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from delivery.source import ROOT
from model_registry import BundleMetadata
from settings.schema import QualityGateSettings
from training.evaluate import quality_gate

# A check that runs longer than this is stopped and failed.
COMMAND_TIMEOUT_SECONDS = 1800


@dataclass
class CheckResult:
    name: str
    passed: bool = True
    seconds: float = 0.0
    figures: dict[str, Any] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    # Report files, relative to the evidence directory.
    reports: list[str] = field(default_factory=list)

    def fail(self, message: str) -> None:
        self.passed = False
        self.failures.append(message)

    def as_record(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "result": "passed" if self.passed else "failed",
            "seconds": round(self.seconds, 2),
            "figures": self.figures,
            "failures": self.failures,
            "reports": self.reports,
        }


@contextmanager
def timed(result: CheckResult) -> Iterator[CheckResult]:
    started = time.monotonic()
    try:
        yield result
    finally:
        result.seconds = time.monotonic() - started


def _run_logged(argv: list[str], log: Path) -> tuple[int | None, str]:
    """Runs argv from the repository root, output to `log`; (exit code or None, last lines)."""
    with log.open("ab") as output:
        output.write(f"$ {' '.join(argv)}\n".encode())
        output.flush()
        try:
            code = subprocess.run(  # noqa: S603
                argv, cwd=ROOT, stdout=output, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, timeout=COMMAND_TIMEOUT_SECONDS, check=False,
            ).returncode  # fmt: skip
        except subprocess.TimeoutExpired:
            code = None
        except OSError as error:
            output.write(f"cannot run: {error}\n".encode())
            code = 127
    tail = log.read_text(errors="replace").splitlines()[-15:]
    return code, "\n".join(tail)


def _tool(name: str) -> str:
    """A tool from this virtualenv when it has one, else from PATH."""
    candidate = Path(sys.executable).parent / name
    return str(candidate) if candidate.exists() else name


def run_commands(name: str, commands: list[list[str]], reports: Path, root: Path) -> CheckResult:
    """Every command must exit 0 (all of them run, so one report shows every problem)."""
    result = CheckResult(name)
    log = reports / f"{name}.log"
    with timed(result):
        for argv in commands:
            code, tail = _run_logged([_tool(argv[0]), *argv[1:]], log)
            if code != 0:
                why = "timed out" if code is None else f"exited {code}"
                result.fail(f"`{' '.join(argv)}` {why}:\n{tail}")
    result.figures["commands"] = len(commands)
    result.reports.append(str(log.relative_to(root)))
    return result


def run_pytest(name: str, args: list[str], reports: Path, root: Path) -> CheckResult:
    """A pytest run: passes when pytest exits 0 and at least one test ran."""
    result = CheckResult(name)
    junit = reports / f"{name}.junit.xml"
    log = reports / f"{name}.log"
    argv = [
        sys.executable, "-m", "pytest", *args, f"--junitxml={junit}",
        "-p", "no:cacheprovider", "-q", "--no-header",
    ]  # fmt: skip
    with timed(result):
        code, tail = _run_logged(argv, log)
    counts = junit_counts(junit)
    result.figures.update(counts)
    result.reports += [str(log.relative_to(root))]
    if junit.exists():
        result.reports.append(str(junit.relative_to(root)))
    if code != 0:
        why = "timed out" if code is None else f"exited {code}"
        result.fail(f"pytest {' '.join(args)} {why}:\n{tail}")
    elif counts["passed"] == 0:
        result.fail(f"pytest {' '.join(args)} passed no test (all skipped or none collected)")
    return result


def junit_counts(path: Path) -> dict[str, int]:
    """tests, passed, failed, errors, skipped from a junit XML report (zeros when absent)."""
    counts = dict.fromkeys(("tests", "passed", "failed", "errors", "skipped"), 0)
    try:
        root = ElementTree.parse(path).getroot()  # noqa: S314  (our own pytest's report)
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


def check_quality(metadata: BundleMetadata, gate: QualityGateSettings) -> CheckResult:
    """The training quality gate, applied again to the metrics the bundle recorded."""
    result = CheckResult("quality")
    metrics = metadata.metrics
    result.figures = {name: metrics[name] for name in ("accuracy", "f1", "roc_auc")}
    for failure in quality_gate(metrics, gate):
        result.fail(f"model {metadata.version}: {failure}")
    return result
