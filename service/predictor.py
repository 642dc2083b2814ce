"""The model's business rules: which column is positive, the threshold, the label names."""

from dataclasses import dataclass

from model_registry import BundleMetadata, LoadedBundle


@dataclass(frozen=True)
class Prediction:
    label: str
    positive: float
    negative: float


class Predictor:
    def __init__(self, bundle: LoadedBundle):
        self.metadata: BundleMetadata = bundle.metadata
        self._model = bundle.model
        self._positive_column = list(self._model.classes_).index(1)
        self._positive_label = self.metadata.labels["1"]
        self._negative_label = self.metadata.labels["0"]

    @property
    def version(self) -> str:
        return self.metadata.version

    def predict(self, texts: list[str]) -> list[Prediction]:
        """Scores a batch in one call: vectorizing texts together beats one at a time."""
        scores = self._model.predict_proba(texts)[:, self._positive_column]
        threshold = self.metadata.threshold
        return [
            Prediction(
                label=self._positive_label if score >= threshold else self._negative_label,
                positive=float(score),
                negative=float(1.0 - score),
            )
            for score in scores
        ]
