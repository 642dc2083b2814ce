"""`quality`: the model's recorded held-out metrics against the gate's own minimums."""

from typing import Any

from pydantic import Field

from sentiment_release.gates.checks.base import (
    Check,
    CheckOptions,
    CheckResult,
    GateContext,
    register,
)
from sentiment_release.training import quality_gate


class QualityOptions(CheckOptions):
    min_accuracy: float = Field(ge=0, le=1)
    min_f1: float = Field(ge=0, le=1)
    min_roc_auc: float = Field(ge=0, le=1)


@register
class Quality(Check):
    kind = "quality"
    Options = QualityOptions

    def check(self, context: GateContext, result: CheckResult) -> None:
        options: QualityOptions = self.options
        metadata = context.bundle.metadata
        minimums = {
            "accuracy": options.min_accuracy,
            "f1": options.min_f1,
            "roc_auc": options.min_roc_auc,
        }
        result.figures = {metric: metadata.metrics.get(metric) for metric in minimums}
        for failure in quality_gate(metadata.metrics, minimums):
            result.fail(f"model {metadata.version}: {failure}")

    @classmethod
    def summary(cls, name: str, figures: dict[str, Any]) -> str:
        if figures.get("accuracy") is None or figures.get("f1") is None:
            return name
        return f"accuracy {figures['accuracy']:.3f}, f1 {figures['f1']:.3f}"
