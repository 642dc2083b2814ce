"""Held-out metrics and the quality gate that decides whether a model may be published."""

from dataclasses import dataclass

from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, roc_auc_score
from sklearn.pipeline import Pipeline

from settings.schema import QualityGateSettings


def positive_scores(model: Pipeline, texts: list[str]) -> list[float]:
    positive_column = list(model.classes_).index(1)
    return model.predict_proba(texts)[:, positive_column].tolist()


def evaluate(model: Pipeline, texts: list[str], labels: list[int], threshold: float) -> dict:
    return metrics_from_scores(positive_scores(model, texts), labels, threshold)


def metrics_from_scores(scores: list[float], labels: list[int], threshold: float) -> dict:
    """Held-out metrics from P(positive) scores, wherever they were computed."""
    predicted = [int(score >= threshold) for score in scores]
    tn, fp, fn, tp = confusion_matrix(labels, predicted, labels=[0, 1]).ravel().tolist()
    return {
        "accuracy": float(accuracy_score(labels, predicted)),
        "f1": float(f1_score(labels, predicted)),
        "roc_auc": float(roc_auc_score(labels, scores)),
        "confusion_matrix": {"tn": tn, "fp": fp, "fn": fn, "tp": tp},
        "support": len(labels),
    }


@dataclass(frozen=True)
class GateFailure:
    metric: str
    value: float
    minimum: float

    def __str__(self) -> str:
        return f"{self.metric} {self.value:.4f} is below the minimum {self.minimum:.4f}"


def quality_gate(metrics: dict, gate: QualityGateSettings) -> list[GateFailure]:
    """The metrics that fall short of the configured minimums (empty: the model passes)."""
    minimums = {
        "accuracy": gate.min_accuracy,
        "f1": gate.min_f1,
        "roc_auc": gate.min_roc_auc,
    }
    return [
        GateFailure(metric, metrics[metric], minimum)
        for metric, minimum in minimums.items()
        if metrics[metric] < minimum
    ]
