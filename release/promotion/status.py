"""What runs in each environment, as the deploy target sees it, and how the ledger accounts
for it: promoted and passed, promoted and failed its gate, or deployed by hand."""

from dataclasses import asdict, dataclass
from typing import Any

from delivery.targets import DeployTarget, EnvironmentStatus
from promotion.ledger import Ledger, LedgerEntry
from promotion.policy import Policy


@dataclass(frozen=True)
class EnvironmentReport:
    found: EnvironmentStatus
    port: int
    entry: LedgerEntry | None  # the ledger's last entry for the environment

    @property
    def release(self) -> str:
        if self.found.image is None:
            return f"{self.entry.event} {self.entry.result}" if self.entry else "-"
        if self.entry is None or self.entry.image != self.found.image:
            return "deployed without promotion"
        gate = "gate passed" if self.entry.released else "GATE FAILED"
        return f"#{self.entry.sequence} {self.entry.event}, {gate}"

    def as_dict(self) -> dict[str, Any]:
        return {
            **asdict(self.found),
            "port": self.port,
            "ledger": self.entry.model_dump(mode="json") if self.entry else None,
            "release": self.release,
        }


def environments_status(
    policy: Policy, target: DeployTarget, ledger: Ledger
) -> list[EnvironmentReport]:
    reports = []
    for environment in policy.environments:
        entries = ledger.entries(environment.name)
        reports.append(
            EnvironmentReport(
                target.status(environment.name), environment.port, entries[-1] if entries else None
            )
        )
    return reports
