"""The compiled scorer: a word n-gram vectorizer (counts or tf-idf) and a binary linear
classifier, as plain arrays in a JSON file of the bundle, scored in pure Python.

scikit-learn spends about half a millisecond validating one review before arithmetic that takes
microseconds: tokenize, look up, weight, normalise, one dot product, a sigmoid. This does only the
arithmetic, in scikit-learn's order, with no pickle, numpy or scikit-learn. Scores agree with
scikit-learn's to about 1e-16; sentiment/model/scoring.py checks the bundle's own samples before
either is used. sentiment_release/training/compile.py writes it, for the shapes it reproduces
exactly; any other model is served by scikit-learn.
"""

import json
import math
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from sentiment.model.drift import Vocabulary

COMPILED_FILE = "scorer.json"
FORMAT = "sentiment-compiled-linear/v1"


class CompiledModelError(ValueError):
    """The compiled artifact is malformed, or disagrees with the model it was made from."""


# What compile.py emits and this scorer runs: scikit-learn's default word pattern and its
# one-letter variant. Any other regex would be run on client text (a backtracking one can
# hold a worker for minutes), so a bundle cannot bring its own.
TOKEN_PATTERNS = (r"(?u)\b\w\w+\b", r"(?u)\b\w+\b")
# Longer n-grams grow with the cube of a review's length; nothing trained here uses them.
MAX_NGRAM = 3
# Finite weights of a sane size: no NaN, no infinity, no sum that overflows.
Weight = Annotated[float, Field(allow_inf_nan=False, ge=-1e6, le=1e6)]


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
    idf: list[Weight] | None = None
    norm: Literal["l1", "l2"] | None = None
    # terms[i] is feature i.
    terms: list[str]


class CompiledClassifier(_Strict):
    coef: list[Weight]
    intercept: Weight
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
        if not 1 <= low <= high <= MAX_NGRAM:
            raise ValueError(
                f"ngram_range {vectorizer.ngram_range} is not 1 <= min <= max <= {MAX_NGRAM}"
            )
        if vectorizer.token_pattern not in TOKEN_PATTERNS:
            raise ValueError(
                f"token_pattern {vectorizer.token_pattern!r} is not one of {TOKEN_PATTERNS}"
            )
        if len(self.classifier.coef) != size:
            raise ValueError(f"{len(self.classifier.coef)} coefficients for {size} terms")
        if vectorizer.idf is not None and len(vectorizer.idf) != size:
            raise ValueError(f"{len(vectorizer.idf)} idf values for {size} terms")
        if vectorizer.kind == "count" and (vectorizer.idf, vectorizer.norm) != (None, None):
            raise ValueError("a count vectorizer has no idf and no norm")
        if len(set(vectorizer.terms)) != size:
            raise ValueError("a term appears twice")
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
        self._min_n, self._max_n = vectorizer.ngram_range
        self._binary = vectorizer.binary
        self._sublinear = vectorizer.sublinear_tf
        self._norm = vectorizer.norm
        idf = vectorizer.idf or [1.0] * len(vectorizer.terms)
        # n-gram -> (its idf, its coefficient): one look-up per distinct n-gram.
        self._weights = dict(zip(vectorizer.terms, zip(idf, classifier.coef, strict=True),
                                 strict=True))  # fmt: skip
        # The two terms of an n-gram seen once (w = idf): w * coef, and w * w or |w|.
        self._dot_once = {term: w * coef for term, (w, coef) in self._weights.items()}
        self._norm_once = {term: w * w if self._norm == "l2" else abs(w)
                           for term, (w, _) in self._weights.items()}  # fmt: skip
        self._intercept = classifier.intercept

    @classmethod
    def from_bytes(cls, data: bytes) -> "CompiledScorer":
        try:
            return cls(CompiledModel.model_validate(json.loads(data)))
        except (ValueError, ValidationError) as error:
            raise CompiledModelError(f"not a compiled model: {error}") from None

    def vocabulary(self) -> Vocabulary:
        """The words (unigrams) it knows, split as it splits reviews."""
        words = (term for term in self._weights if " " not in term)
        return Vocabulary(words, self._tokens.pattern, self._lowercase)

    def _grams(self, text: str) -> list[str]:
        """scikit-learn's word analyzer: preprocess, tokenize, n-grams."""
        tokens = self._tokens.findall(text.lower() if self._lowercase else text)
        grams = tokens if self._min_n == 1 else []
        for n in range(max(self._min_n, 2), min(self._max_n, len(tokens)) + 1):
            shifted = [tokens[k:] for k in range(n)]
            grams = grams + list(map(" ".join, zip(*shifted, strict=False)))
        return grams

    def score(self, text: str) -> float:
        """The decision is sum(w * coef) / norm(w) + intercept over the known n-grams,
        w = tf (1 when binary; 1 + log tf when sublinear) * idf: scikit-learn divides each
        w by the norm first, which changes the result by about 1e-16. An n-gram seen once
        (most are) has w = idf whatever the settings, so its two terms are precomputed and
        summed without a Python-level loop; repeated n-grams are then corrected."""
        grams = self._grams(text)
        distinct: Iterable[str] = grams
        counts = None
        if len(set(grams)) != len(grams):
            distinct = counts = Counter(grams)
        dot = sum(filter(None, map(self._dot_once.get, distinct)))
        total = sum(filter(None, map(self._norm_once.get, distinct)))
        if counts is not None:
            for gram, count in counts.items():
                if count > 1 and gram in self._weights:
                    dot, total = self._recount(gram, count, dot, total)
        if self._norm == "l2":
            total = math.sqrt(total)
        if self._norm is not None and total > 0:
            dot /= total
        return sigmoid(dot + self._intercept)

    def _recount(self, gram: str, count: int, dot: float, total: float) -> tuple[float, float]:
        """The sums with `gram` counted `count` times instead of once."""
        idf, coef = self._weights[gram]
        value = 1.0 if self._binary else float(count)
        if self._sublinear:
            value = math.log(value) + 1.0
        value *= idf
        dot += (value - idf) * coef
        if self._norm == "l2":
            return dot, total + value * value - idf * idf
        return dot, total + abs(value) - abs(idf)

    def scores(self, texts: Sequence[str]) -> list[float]:
        return [self.score(text) for text in texts]
