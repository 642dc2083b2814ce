"""The whole pipeline on one machine, as one object: the champion (pulled by its pin, or
trained while none is pinned), the first environment's gate, build, then promote the one
image to each later environment up to `until`. It stops at the first step that does not
pass and reports every step; `make pipeline` and .ci/run call it, the CLI prints its
report."""

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import Literal, Protocol

from sentiment.model import BundleError
from sentiment_release.delivery.records import BuildRecord
from sentiment_release.gates.evidence import EvidenceRecord
from sentiment_release.gates.summary import describe
from sentiment_release.promotion.policy import Policy
from sentiment_release.promotion.promote import Promoter
from sentiment_release.promotion.rules import PromotionRefusedError, ReleaseTags
from sentiment_release.support.errors import ReleaseError

Status = Literal["passed", "failed", "refused", "not run"]
ICONS = {"passed": "✅", "failed": "❌", "refused": "⛔", "not run": "⏭️"}


class Tags(ReleaseTags, Protocol):
    def create_tag(self, tag: str, commit: str) -> None: ...


@dataclass(frozen=True)
class StepResult:
    name: str
    result: Status
    seconds: float
    summary: str
    detail: str = ""


@dataclass(frozen=True)
class PipelineReport:
    steps: list[StepResult]

    @property
    def succeeded(self) -> bool:
        return all(step.result == "passed" for step in self.steps)

    def table(self) -> str:
        total = sum(step.seconds for step in self.steps)
        lines = [f"{'STEP':12} {'RESULT':8} {'SECONDS':>8}  KEY FIGURES"]
        for step in self.steps:
            lines.append(f"{step.name:12} {step.result:8} {step.seconds:8.1f}  {step.summary}")
        lines.append(f"{'total':12} {'':8} {total:8.1f}")
        details = [f"{step.name}: {step.detail}" for step in self.steps if step.detail]
        return "\n".join([*lines, "", *details] if details else lines)

    def markdown(self, title: str) -> str:
        total = sum(step.seconds for step in self.steps)
        lines = [
            f"## {title}",
            "",
            "| Step | Result | Seconds | Key figures |",
            "|---|---|---:|---|",
        ]
        for step in self.steps:
            summary = step.summary.replace("|", "\\|")
            lines.append(f"| {step.name} | {ICONS[step.result]} {step.result} | "
                         f"{step.seconds:.1f} | {summary} |")  # fmt: skip
        verdict = "passed" if self.succeeded else "failed"
        lines.append(f"| **total** | {verdict} | {total:.1f} | |")
        for step in self.steps:
            if step.detail:
                lines += ["", f"**{step.name}**:", "", "```", step.detail.strip(), "```"]
        return "\n".join(lines) + "\n"


@dataclass
class Pipeline:
    policy: Policy
    # Trains and publishes a model unless one is current; a line about the model.
    # The model the image gets: the pinned champion pulled (trained while none is pinned).
    champion: Callable[[], str]
    # The first environment's gate, on the source tree and the current model.
    source_gate: Callable[[], EvidenceRecord]
    # Builds and pushes the one image every later step promotes.
    build: Callable[[], BuildRecord]
    promoter: Promoter
    tags: Tags
    log: Callable[[str], None] = field(default=lambda message: None)

    def run(self, until: str | None = None, release_tag: str | None = None) -> PipelineReport:
        built: list[BuildRecord] = []

        def build() -> tuple[bool, str, str]:
            record = self.build()
            built.append(record)
            budget = " (over budget)" if record.over_budget else ""
            return True, (f"{record.digest[:19]}..., {record.size_mb} MB{budget}, "
                          f"{record.seconds.total} s"), ""  # fmt: skip

        steps: list[tuple[str, Callable[[], tuple[bool, str, str]]]] = [
            ("champion", lambda: (True, self.champion(), "")),
            (f"{self.policy.first.name} gate", self._gate),
            ("build", build),
        ]
        for environment in self._promoted_until(until):
            name = environment.name
            steps.append((name, lambda name=name: self._promote(name, built[0], release_tag)))
        return PipelineReport(self._run_steps(steps))

    def _promoted_until(self, until: str | None):
        promoted = self.policy.promoted
        if until is None:
            return promoted
        names = [environment.name for environment in promoted]
        if until not in names:
            raise ReleaseError(f"{until!r} is not promoted to (choose from {', '.join(names)})")
        return promoted[: names.index(until) + 1]

    def _run_steps(self, steps) -> list[StepResult]:
        results: list[StepResult] = []
        for name, step in steps:
            if any(result.result != "passed" for result in results):
                results.append(StepResult(name, "not run", 0.0, ""))
                continue
            self.log(f"==> {name}")
            started = time.monotonic()
            status: Status
            try:
                passed, summary, detail = step()
                status = "passed" if passed else "failed"
            except PromotionRefusedError as error:
                status, summary, detail = "refused", "", str(error)
            except (ReleaseError, BundleError) as error:
                status, summary, detail = "failed", "", str(error)
            results.append(StepResult(name, status, time.monotonic() - started, summary, detail))
        return results

    def _gate(self) -> tuple[bool, str, str]:
        record = self.source_gate()
        return record.passed, describe(record), "\n".join(record.failures)

    def _promote(self, target: str, built: BuildRecord, given: str | None) -> tuple[bool, str, str]:
        tag = given
        if tag is None and self.policy.environment(target).requires_release_tag:
            tag = self._local_release_tag(built)
        outcome = self.promoter.promote(target, built.image, tag)
        summary = describe(outcome.evidence) if outcome.evidence else ""
        if outcome.entry.release_tag:
            summary = f"{outcome.entry.release_tag}; {summary}"
        if outcome.rollback:
            summary += f"; rolled back: {outcome.rollback.entry.result}"
        failures = outcome.evidence.failures if outcome.evidence else []
        if outcome.rollback_refused:
            summary += "; NO ROLLBACK"
            failures = [*failures, outcome.rollback_refused]
        if outcome.registry_tag_error:
            summary += "; NOT TAGGED IN THE REGISTRY"
            failures = [*failures, outcome.registry_tag_error]
        return outcome.released, summary, "\n".join(failures)

    def _local_release_tag(self, built: BuildRecord) -> str | None:
        """A clean commit without a release tag gets a local one, so a laptop can go all
        the way; a dirty build gets none (and is refused, as it should be)."""
        pattern = self.policy.release_tag_pattern
        if built.git_dirty or self.tags.release_tags(built.git_commit, pattern):
            return None
        tag = f"v{built.version}-local.{built.git_commit[:12]}"
        if not fnmatchcase(tag, pattern):
            raise PromotionRefusedError(
                f"a local release tag {tag} would not match release_tag_pattern {pattern!r}; "
                f"tag {built.git_commit[:12]} yourself"
            )
        self.tags.create_tag(tag, built.git_commit)
        self.log(f"tagged {built.git_commit[:12]} as {tag} (a local release tag)")
        return tag
