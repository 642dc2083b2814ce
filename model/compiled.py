"""The compiled scorer: a word n-gram vectorizer (counts or tf-idf) and a binary linear
classifier, as plain arrays in a JSON file of the bundle, scored in pure Python.

scikit-learn spends about half a millisecond validating one review before arithmetic that
takes microseconds: tokenize, look up, weight, normalise, one dot product, a sigmoid. This
does only the arithmetic, in scikit-learn's order, with no pickle, numpy or scikit-learn.
Scores agree with scikit-learn's to about 1e-16; model/scoring.py checks the bundle's own
samples before either is used. training/compile.py writes it, for the shapes it reproduces
exactly; any other model is served by scikit-learn.
"""

import json
import math
import re
from collections.abc import Sequence
from typing import Literal

from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

COMPILED_FILE = "scorer.json"
FORMAT = "sentiment-compiled-linear/v1"


class CompiledModelError(ValueError):
    """The compiled artifact is malformed, or disagrees with the model it was made from."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CompiledVectorizer(_Strict):
    kind: Literal["count", "tfidf"]
    lowercase: bool
    token_pattern: str
    ngram_range: tuple[int, int]
    binary: bool
    # tf-idf only: 1 + log(tf) instead of tf, the idf of each term, the row norm.
    sublinear_tf: bool = False
    idf: list[float] | None = None
    norm: Literal["l1", "l2"] | None = None
    # terms[i] is feature i.
    terms: list[str]


class CompiledClassifier(_Strict):
    coef: list[float]
    intercept: float
    # classes[1] is the class a positive decision means (scikit-learn's classes_ order).
    classes: tuple[int, int]


class CompiledModel(_Strict):
    format: Literal["sentiment-compiled-linear/v1"]
    vectorizer: CompiledVectorizer
    classifier: CompiledClassifier

    @model_validator(mode="after")
    def _consistent(self) -> "CompiledModel":
        vectorizer, size = self.vectorizer, len(self.vectorizer.terms)
        low, high = vectorizer.ngram_range
        if not 1 <= low <= high:
            raise ValueError(f"ngram_range {vectorizer.ngram_range} is not 1 <= min <= max")
        if len(self.classifier.coef) != size:
            raise ValueError(f"{len(self.classifier.coef)} coefficients for {size} terms")
        if vectorizer.idf is not None and len(vectorizer.idf) != size:
            raise ValueError(f"{len(vectorizer.idf)} idf values for {size} terms")
        if vectorizer.kind == "count" and (vectorizer.idf, vectorizer.norm) != (None, None):
            raise ValueError("a count vectorizer has no idf and no norm")
        if len(set(vectorizer.terms)) != size:
            raise ValueError("a term appears twice")
        try:
            re.compile(vectorizer.token_pattern)
        except re.error as error:
            raise ValueError(f"token_pattern does not compile: {error}") from None
        return self


def sigmoid(decision: float) -> float:
    """1 / (1 + e^-d), without overflow for any finite d (scipy's expit)."""
    if decision >= 0:
        return 1.0 / (1.0 + math.exp(-decision))
    exp = math.exp(decision)
    return exp / (1.0 + exp)


class CompiledScorer:
    """The probability of `classes[1]` for reviews (scikit-learn's predict_proba column 1),
    from a CompiledModel."""

    def __init__(self, model: CompiledModel):
        vectorizer, classifier = model.vectorizer, model.classifier
        self.classes = classifier.classes
        self._lowercase = vectorizer.lowercase
        self._tokens = re.compile(vectorizer.token_pattern)
        if self._tokens.groups > 1:  # scikit-learn refuses these too
            raise CompiledModelError("token_pattern has more than one capturing group")
        self._min_n, self._max_n = vectorizer.ngram_range
        self._binary = vectorizer.binary
        self._sublinear = vectorizer.sublinear_tf
        self._norm = vectorizer.norm
        self._index = {term: i for i, term in enumerate(vectorizer.terms)}
        self._idf = vectorizer.idf
        self._coef = classifier.coef
        self._intercept = classifier.intercept

    @classmethod
    def from_bytes(cls, data: bytes) -> "CompiledScorer":
        try:
            return cls(CompiledModel.model_validate(json.loads(data)))
        except (ValueError, ValidationError) as error:
            raise CompiledModelError(f"not a compiled model: {error}") from None

    def _grams(self, text: str) -> list[str]:
        """scikit-learn's word analyzer: preprocess, tokenize, n-grams, in its order."""
        tokens = self._tokens.findall(text.lower() if self._lowercase else text)
        grams = list(tokens) if self._min_n == 1 else []
        count = len(tokens)
        for n in range(max(self._min_n, 2), min(self._max_n, count) + 1):
            grams += [" ".join(tokens[i : i + n]) for i in range(count - n + 1)]
        return grams

    def score(self, text: str) -> float:
        counts: dict[int, int] = {}
        index = self._index
        for gram in self._grams(text):
            feature = index.get(gram)
            if feature is not None:
                counts[feature] = counts.get(feature, 0) + 1
        features = sorted(counts)  # scikit-learn sums a row in feature order
        values = [1.0 if self._binary else float(counts[f]) for f in features]
        if self._sublinear:
            values = [math.log(v) + 1.0 for v in values]
        if self._idf is not None:
            idf = self._idf
            values = [v * idf[f] for v, f in zip(values, features, strict=True)]
        if self._norm is not None:
            total = (
                sum(abs(v) for v in values)
                if self._norm == "l1"
                else math.sqrt(sum(v * v for v in values))
            )
            if total > 0:
                values = [v / total for v in values]
        coef = self._coef
        decision = sum(v * coef[f] for v, f in zip(values, features, strict=True))
        return sigmoid(decision + self._intercept)

    def scores(self, texts: Sequence[str]) -> list[float]:
        return [self.score(text) for text in texts]
