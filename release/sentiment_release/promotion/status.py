"""What runs in each environment, as the deploy target sees it, reconciled with the ledger:
promoted and passed, promoted and failed its gate, a deploy that never finished, deployed
by hand, or a ledger its signed evidence contradicts."""

from dataclasses import asdict, dataclass
from typing import Any

from sentiment_release.delivery.targets import DeployTarget, EnvironmentStatus
from sentiment_release.gates.evidence_store import EvidenceStore
from sentiment_release.promotion.ledger import DEPLOYING, Ledger, LedgerEntry
from sentiment_release.promotion.policy import Policy
from sentiment_release.promotion.rules import check_ledger
from sentiment_release.support.records import RecordError


@dataclass(frozen=True)
class EnvironmentReport:
    found: EnvironmentStatus
    port: int
    entry: LedgerEntry | None  # the ledger's last entry for the environment
    # Why the ledger cannot be relied on, if it cannot.
    ledger_problem: str | None = None
    # Entries a run wrote that wait for the signing step (`sentiment sign ENV`).
    unsigned: int = 0

    @property
    def release(self) -> str:
        if self.ledger_problem:
            return "LEDGER DOES NOT HOLD"
        if self.unsigned:
            return f"{self.unsigned} ENTRIES UNSIGNED (sentiment sign {self.found.environment})"
        entry = self.entry
        if entry is not None and entry.result == DEPLOYING:
            runs = "its image runs, unchecked" if entry.image == self.found.image else (
                "its image does not run"
            )  # fmt: skip
            return f"#{entry.sequence} {entry.event} INTERRUPTED ({runs})"
        if self.found.image is None:
            return f"{entry.event} {entry.result}" if entry else "-"
        if entry is None or entry.image != self.found.image:
            return "deployed without promotion"
        gate = "gate passed" if entry.released else "GATE FAILED"
        return f"#{entry.sequence} {entry.event}, {gate}"

    def as_dict(self) -> dict[str, Any]:
        return {
            **asdict(self.found),
            "port": self.port,
            "ledger": self.entry.model_dump(mode="json") if self.entry else None,
            "ledger_problem": self.ledger_problem,
            "unsigned": self.unsigned,
            "release": self.release,
        }


def environments_status(
    policy: Policy, target: DeployTarget, ledger: Ledger, store: EvidenceStore
) -> list[EnvironmentReport]:
    reports = []
    for environment in policy.environments:
        name = environment.name
        try:
            check_ledger(name, ledger, store)
            entries, problem = ledger.entries(name), None
            unsigned = len(ledger.pending(name, skip_damaged=True))
        except RecordError as error:
            entries, problem, unsigned = [], str(error), 0
        last = entries[-1] if entries else None
        reports.append(EnvironmentReport(target.status(name), environment.port, last, problem,
                                         unsigned))  # fmt: skip
    return reports
