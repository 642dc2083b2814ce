"""The model's business rules, in one place: which class is positive, the threshold that
turns a score into a label, and the label names. Serving, training's evaluation and the
skew gate all score through here, so they cannot disagree."""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from model.bundle import BundleMetadata, LoadedBundle

POSITIVE_CLASS = 1
# Class -> label name, as recorded in every bundle's metadata.
LABELS = {"0": "negative", "1": "positive"}


def positive_scores(model: Any, texts: Sequence[str]) -> list[float]:
    """P(positive) for each text, from a fitted classifier (a scikit-learn pipeline)."""
    column = list(model.classes_).index(POSITIVE_CLASS)
    return model.predict_proba(list(texts))[:, column].tolist()


def predicted_class(score: float, threshold: float) -> int:
    """A review is positive when P(positive) reaches the threshold."""
    return POSITIVE_CLASS if score >= threshold else 1 - POSITIVE_CLASS


@dataclass(frozen=True)
class Prediction:
    label: str
    positive: float
    negative: float


class Scorer:
    """A loaded bundle and the rules to score with it."""

    def __init__(self, bundle: LoadedBundle):
        self.metadata: BundleMetadata = bundle.metadata
        self._model = bundle.model
        if POSITIVE_CLASS not in list(self._model.classes_):
            raise ValueError(f"the model has no class {POSITIVE_CLASS} (positive) to score")
        if set(self.metadata.labels) != set(LABELS):
            raise ValueError(f"the bundle names labels {self.metadata.labels}, not {set(LABELS)}")
        self._labels = {int(key): name for key, name in self.metadata.labels.items()}

    @property
    def version(self) -> str:
        return self.metadata.version

    def scores(self, texts: Sequence[str]) -> list[float]:
        """Scores a batch in one call: vectorizing texts together beats one at a time."""
        return positive_scores(self._model, texts)

    def predict(self, texts: Sequence[str]) -> list[Prediction]:
        threshold = self.metadata.threshold
        return [
            Prediction(
                label=self._labels[predicted_class(score, threshold)],
                positive=score,
                negative=1.0 - score,
            )
            for score in self.scores(texts)
        ]
