"""The model's business rules, in one place: which class is positive, the threshold that
turns a score into a label, and the label names. Serving, training's evaluation and the
skew gate all score through here, so they cannot disagree."""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from sentiment.model.bundle import BundleIntegrityError, BundleMetadata, LoadedBundle
from sentiment.model.drift import Vocabulary

POSITIVE_CLASS = 1
# Class -> label name, as recorded in every bundle's metadata.
LABELS = {"0": "negative", "1": "positive"}
# How far a loaded model may score the bundle's samples from what scikit-learn gave them
# at publish time: the compiled scorer, or another scikit-learn build, must be this exact.
AGREEMENT_TOLERANCE = 1e-12


def positive_scores(model: Any, texts: Sequence[str]) -> list[float]:
    """P(positive) for each text, from a fitted classifier (a scikit-learn pipeline)."""
    column = list(model.classes_).index(POSITIVE_CLASS)
    return model.predict_proba(list(texts))[:, column].tolist()


def vectorizer_vocabulary(model: Any) -> Vocabulary:
    """The unigrams of a fitted pipeline's vectorizer, with its tokenizing rules."""
    vectorizer = model.named_steps["vectorizer"]
    words = (term for term in vectorizer.vocabulary_ if " " not in term)
    return Vocabulary(words, vectorizer.token_pattern, vectorizer.lowercase)


def predicted_class(score: float, threshold: float) -> int:
    """A review is positive when P(positive) reaches the threshold."""
    return POSITIVE_CLASS if score >= threshold else 1 - POSITIVE_CLASS


@dataclass(frozen=True)
class Prediction:
    label: str
    positive: float
    negative: float


class Scorer:
    """A loaded bundle and the rules to score with it: its compiled scorer where it has
    one, else its scikit-learn model. Either must first give back the scores recorded for
    the bundle's samples, or the bundle is not used."""

    def __init__(self, bundle: LoadedBundle):
        self.metadata: BundleMetadata = bundle.metadata
        self._model = bundle.model
        self._compiled = bundle.compiled
        self.engine: Literal["compiled", "scikit-learn"]
        if self._compiled is not None:
            self.engine = "compiled"
            classes = list(self._compiled.classes)
        else:
            self.engine = "scikit-learn"
            classes = list(self._model.classes_)
        if POSITIVE_CLASS not in classes:
            raise ValueError(f"the model has no class {POSITIVE_CLASS} (positive) to score")
        self._positive_is_second = classes.index(POSITIVE_CLASS) == 1
        if set(self.metadata.labels) != set(LABELS):
            raise ValueError(f"the bundle names labels {self.metadata.labels}, not {set(LABELS)}")
        self._labels = {int(key): name for key, name in self.metadata.labels.items()}
        self._check_samples()

    def vocabulary(self) -> Vocabulary:
        """The words the model knows, split as its vectorizer splits reviews."""
        if self._compiled is not None:
            return self._compiled.vocabulary()
        return vectorizer_vocabulary(self._model)

    @property
    def version(self) -> str:
        return self.metadata.version

    def scores(self, texts: Sequence[str]) -> list[float]:
        """Scores a batch in one call: vectorizing texts together beats one at a time."""
        if self._compiled is None:
            return positive_scores(self._model, texts)
        second = self._compiled.scores(texts)
        return second if self._positive_is_second else [1.0 - p for p in second]

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

    def _check_samples(self) -> None:
        samples = self.metadata.samples
        texts = [sample.text for sample in samples]
        off = disagreements(texts, self.scores(texts), [sample.positive for sample in samples])
        if off:
            text, score, recorded = off[0]
            raise BundleIntegrityError(
                f"model {self.version} scored by {self.engine} gives {len(off)} of "
                f"{len(samples)} sample reviews another score than scikit-learn gave at "
                f"publish time (e.g. {text[:40]!r}: {score!r}, recorded "
                f"{recorded!r}; tolerance {AGREEMENT_TOLERANCE:g}); not serving it"
            )


def disagreements(
    texts: Sequence[str], scores: Sequence[float], references: Sequence[float]
) -> list[tuple[str, float, float]]:
    """(text, score, reference) where a score is more than AGREEMENT_TOLERANCE from its
    reference (a NaN is never within it)."""
    return [
        (text, score, reference)
        for text, score, reference in zip(texts, scores, references, strict=True)
        if not abs(score - reference) <= AGREEMENT_TOLERANCE
    ]
