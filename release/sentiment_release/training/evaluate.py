"""Held-out metrics of a model, from its P(positive) scores."""

from collections.abc import Sequence

from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, roc_auc_score

from sentiment.model.scoring import POSITIVE_CLASS, positive_scores, predicted_class


def evaluate(model, texts: Sequence[str], labels: Sequence[int], threshold: float) -> dict:
    return metrics_from_scores(positive_scores(model, texts), labels, threshold)


def metrics_from_scores(scores: Sequence[float], labels: Sequence[int], threshold: float) -> dict:
    """Held-out metrics from P(positive) scores, wherever they were computed."""
    predicted = [predicted_class(score, threshold) for score in scores]
    classes = [1 - POSITIVE_CLASS, POSITIVE_CLASS]
    tn, fp, fn, tp = confusion_matrix(labels, predicted, labels=classes).ravel().tolist()
    return {
        "accuracy": float(accuracy_score(labels, predicted)),
        "f1": float(f1_score(labels, predicted, pos_label=POSITIVE_CLASS)),
        "roc_auc": float(roc_auc_score(labels, scores)),
        "confusion_matrix": {"tn": tn, "fp": fp, "fn": fn, "tp": tp},
        "support": len(labels),
    }
