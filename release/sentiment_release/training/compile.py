"""A fitted pipeline compiled for sentiment/model/compiled.py: the vocabulary, idf, analyzer
settings, coefficients and intercept as plain arrays, when the pipeline has a shape that scorer
reproduces exactly; otherwise why not (the bundle is then served by scikit-learn)."""

import json
from collections.abc import Sequence
from typing import Any

from sklearn.feature_extraction.text import CountVectorizer, TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline

from sentiment.model.compiled import (
    FORMAT,
    MAX_NGRAM,
    TOKEN_PATTERNS,
    CompiledModelError,
    CompiledScorer,
)
from sentiment.model.scoring import disagreements

# Vectorizer settings the compiled scorer does not reproduce, with the values it needs.
REQUIRED = {
    "input": "content",
    "analyzer": "word",
    "preprocessor": None,
    "tokenizer": None,
    "stop_words": None,
    "strip_accents": None,
}


class NotCompilable(Exception):
    """The pipeline has a shape the compiled scorer does not reproduce."""


# Besides the caller's: reviews every compiled scorer must score as scikit-learn does.
CHECKED_ALWAYS = ("good", "bad", "not good at all", "Great food, terrible service!!", "")


def compile_pipeline(model: Any, texts: Sequence[str] = ()) -> bytes:
    """The compiled model as JSON bytes (floats written exactly); NotCompilable when the
    pipeline has another shape, or when the result does not score `texts` (and a few
    reviews of its own) as the pipeline does, within sentiment/model/scoring.py's tolerance."""
    if not isinstance(model, Pipeline) or len(model.steps) != 2:
        raise NotCompilable("not a two-step scikit-learn pipeline (vectorizer, classifier)")
    (_, vectorizer), (_, classifier) = model.steps
    if type(vectorizer) not in (CountVectorizer, TfidfVectorizer):
        raise NotCompilable(f"the vectorizer is a {type(vectorizer).__name__}")
    if type(classifier) is not LogisticRegression:
        raise NotCompilable(f"the classifier is a {type(classifier).__name__}")
    settings = vectorizer.get_params()
    for name, needed in REQUIRED.items():
        if settings[name] != needed:
            raise NotCompilable(f"vectorizer {name}={settings[name]!r}, not {needed!r}")
    if len(classifier.classes_) != 2 or classifier.coef_.shape[0] != 1:
        raise NotCompilable("the classifier is not binary")
    if settings["token_pattern"] not in TOKEN_PATTERNS:
        raise NotCompilable(f"vectorizer token_pattern={settings['token_pattern']!r}")
    if settings["ngram_range"][1] > MAX_NGRAM:
        raise NotCompilable(f"vectorizer ngram_range={settings['ngram_range']!r}")
    terms = [""] * len(vectorizer.vocabulary_)
    for term, index in vectorizer.vocabulary_.items():
        terms[int(index)] = term
    tfidf = isinstance(vectorizer, TfidfVectorizer)
    document = {
        "format": FORMAT,
        "vectorizer": {
            "kind": "tfidf" if tfidf else "count",
            "lowercase": bool(settings["lowercase"]),
            "token_pattern": settings["token_pattern"],
            "ngram_range": [int(n) for n in settings["ngram_range"]],
            "binary": bool(settings["binary"]),
            "terms": terms,
            **(
                {
                    "sublinear_tf": bool(settings["sublinear_tf"]),
                    "idf": vectorizer.idf_.tolist() if settings["use_idf"] else None,
                    "norm": settings["norm"],
                }
                if tfidf
                else {}
            ),
        },
        "classifier": {
            "coef": classifier.coef_[0].tolist(),
            "intercept": float(classifier.intercept_[0]),
            "classes": [int(c) for c in classifier.classes_],
        },
    }
    # repr() of a float reads back as the same float: JSON keeps every bit.
    compiled = json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode()
    try:
        scorer = CompiledScorer.from_bytes(compiled)  # what the service will read
    except CompiledModelError as error:
        raise NotCompilable(str(error)) from None
    checked = [*CHECKED_ALWAYS, *texts]
    reference = model.predict_proba(checked)[:, 1].tolist()
    off = disagreements(checked, scorer.scores(checked), reference)
    if off:
        text, got, expected = off[0]
        raise NotCompilable(f"the compiled scorer gives {text[:40]!r} {got!r}, not {expected!r}")
    return compiled
