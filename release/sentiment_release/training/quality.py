"""The quality gate: which metrics fall short of their minimums. Used when a model is
published (training) and when the first environment's gate looks at it again."""

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class GateFailure:
    metric: str
    value: float
    minimum: float

    def __str__(self) -> str:
        return f"{self.metric} {self.value:.4f} is below the minimum {self.minimum:.4f}"


def quality_gate(metrics: Mapping[str, float], minimums: Mapping[str, float]) -> list[GateFailure]:
    """The metrics that fall short of their minimums (empty: the model passes). A metric
    the model did not record fails too."""
    return [
        GateFailure(metric, float(metrics.get(metric, float("nan"))), minimum)
        for metric, minimum in minimums.items()
        if not metrics.get(metric, float("nan")) >= minimum
    ]
