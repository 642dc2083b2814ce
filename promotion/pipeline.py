"""The whole pipeline on one machine: steps in order, stopping at the first that fails,
with a summary table (printed, and as Markdown for CI job summaries)."""

import time
from collections.abc import Callable
from dataclasses import dataclass

from delivery.errors import DeliveryError
from promotion.rules import PromotionRefusedError


@dataclass(frozen=True)
class StepOutcome:
    passed: bool
    summary: str
    detail: str = ""


@dataclass(frozen=True)
class StepResult:
    name: str
    result: str  # passed, failed, refused, not run
    seconds: float
    summary: str
    detail: str = ""


Step = tuple[str, Callable[[], StepOutcome]]


def run_steps(steps: list[Step], announce: Callable[[str], None]) -> list[StepResult]:
    results: list[StepResult] = []
    stopped = False
    for name, step in steps:
        if stopped:
            results.append(StepResult(name, "not run", 0.0, ""))
            continue
        announce(f"==> {name}")
        started = time.monotonic()
        try:
            outcome = step()
            result = "passed" if outcome.passed else "failed"
            summary, detail = outcome.summary, outcome.detail
        except PromotionRefusedError as error:
            result, summary, detail = "refused", "", str(error)
        except DeliveryError as error:
            result, summary, detail = "failed", "", str(error)
        results.append(StepResult(name, result, time.monotonic() - started, summary, detail))
        stopped = result != "passed"
    return results


def succeeded(results: list[StepResult]) -> bool:
    return all(result.result == "passed" for result in results)


def table(results: list[StepResult]) -> str:
    total = sum(result.seconds for result in results)
    lines = [f"{'STEP':12} {'RESULT':8} {'SECONDS':>8}  KEY FIGURES"]
    for result in results:
        lines.append(f"{result.name:12} {result.result:8} {result.seconds:8.1f}  {result.summary}")
    lines.append(f"{'total':12} {'':8} {total:8.1f}")
    details = [f"{r.name}: {r.detail}" for r in results if r.detail]
    if details:
        lines += ["", *details]
    return "\n".join(lines)


def markdown(results: list[StepResult], title: str) -> str:
    total = sum(result.seconds for result in results)
    icons = {"passed": "✅", "failed": "❌", "refused": "⛔", "not run": "⏭️"}
    lines = [f"## {title}", "", "| Step | Result | Seconds | Key figures |", "|---|---|---:|---|"]
    for result in results:
        summary = result.summary.replace("|", "\\|")
        lines.append(
            f"| {result.name} | {icons[result.result]} {result.result} | "
            f"{result.seconds:.1f} | {summary} |"
        )
    lines.append(f"| **total** | {'passed' if succeeded(results) else 'failed'} | {total:.1f} | |")
    for result in results:
        if result.detail:
            lines += ["", f"**{result.name}**:", "", "```", result.detail.strip(), "```"]
    return "\n".join(lines) + "\n"
