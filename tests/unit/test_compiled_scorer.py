"""The compiled scorer scores as scikit-learn does (within 1e-12; about 1e-16 in practice) for every
shape sentiment_release/training/compile.py accepts, refuses the shapes it cannot reproduce, and a
bundle whose compiled scorer or model disagrees with its recorded samples never serves."""

import json
import math
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.feature_extraction.text import CountVectorizer, TfidfVectorizer
from sklearn.linear_model import LogisticRegression, SGDClassifier
from sklearn.pipeline import Pipeline

from sentiment.model import BundleError, BundleIntegrityError, ModelFolder, Scorer
from sentiment.model.bundle import sha256_hex
from sentiment.model.compiled import CompiledModelError, CompiledScorer, sigmoid
from sentiment.model.scoring import AGREEMENT_TOLERANCE
from sentiment_release.training import train as train_module
from sentiment_release.training.compile import NotCompilable, compile_pipeline
from sentiment_release.training.dataset import load_dataset
from sentiment_release.training.train import EDGE_CASES
from tests.conftest import FIXTURE_DATA, train_fixture_model

DATA = load_dataset(FIXTURE_DATA, ["yelp", "amazon", "imdb"])
TEXTS = [
    *DATA.texts, *EDGE_CASES, "", "   ", "a", "I I I I", "don't stop", "it's 10/10, 5*",
    "ÉCOLE école", "ﬁne ﬁne", "İstanbul", "ß STRASSE", "tab\tand\nnewline", "x" * 5000,
]  # fmt: skip


def fitted(vectorizer, classifier=None, labels=None):
    classifier = classifier or LogisticRegression(solver="liblinear", C=10.0)
    pipeline = Pipeline([("vectorizer", vectorizer), ("classifier", classifier)])
    return pipeline.fit(DATA.texts, labels or DATA.labels)


def worst_difference(model, texts) -> float:
    compiled = CompiledScorer.from_bytes(compile_pipeline(model))
    reference = model.predict_proba(texts)[:, 1]
    return max(abs(a - b) for a, b in zip(compiled.scores(texts), reference, strict=True))


SHAPES = {
    "tfidf, bigrams, sublinear (the default config)": TfidfVectorizer(
        ngram_range=(1, 2), sublinear_tf=True
    ),
    "tfidf, words": TfidfVectorizer(),
    "tfidf, l1, trigrams": TfidfVectorizer(norm="l1", ngram_range=(1, 3)),
    "tfidf, no norm, no idf": TfidfVectorizer(norm=None, use_idf=False),
    "tfidf, binary, min_df 2": TfidfVectorizer(binary=True, min_df=2),
    "tfidf, bigrams only": TfidfVectorizer(ngram_range=(2, 2)),
    "tfidf, case kept": TfidfVectorizer(lowercase=False),
    "tfidf, one-letter tokens": TfidfVectorizer(token_pattern=r"(?u)\b\w+\b"),  # noqa: S106
    "counts": CountVectorizer(),
    "counts, binary, bigrams": CountVectorizer(binary=True, ngram_range=(1, 2)),
}


@pytest.mark.parametrize("vectorizer", SHAPES.values(), ids=SHAPES.keys())
def test_every_compilable_shape_scores_as_scikit_learn_does(vectorizer):
    assert worst_difference(fitted(vectorizer), TEXTS) <= AGREEMENT_TOLERANCE


def test_a_positive_class_listed_first_is_scored_from_the_other_column():
    model = fitted(TfidfVectorizer(), labels=[1 - label for label in DATA.labels])
    compiled = CompiledScorer.from_bytes(compile_pipeline(model))
    assert compiled.classes == (0, 1)
    assert worst_difference(model, TEXTS) <= AGREEMENT_TOLERANCE


MODEL = fitted(TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True))
COMPILED = CompiledScorer.from_bytes(compile_pipeline(MODEL))


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300) | st.lists(st.sampled_from(sorted(MODEL[0].vocabulary_)[:400]))
       .map(" ".join))  # fmt: skip
def test_any_text_scores_as_scikit_learn_does(text):
    reference = MODEL.predict_proba([text])[0, 1]
    assert abs(COMPILED.score(text) - reference) <= AGREEMENT_TOLERANCE


NOT_COMPILABLE = {
    "stop words": (fitted(TfidfVectorizer(stop_words="english")), "stop_words='english'"),
    "characters": (fitted(TfidfVectorizer(analyzer="char")), "analyzer='char'"),
    "accents stripped": (fitted(CountVectorizer(strip_accents="unicode")), "strip_accents"),
    "a tokenizer": (fitted(CountVectorizer(tokenizer=str.split, token_pattern=None)),
                    "tokenizer="),
    "another classifier": (fitted(TfidfVectorizer(), SGDClassifier(loss="log_loss")),
                           "the classifier is a SGDClassifier"),
    "three classes": (fitted(TfidfVectorizer(), LogisticRegression(),
                             [n % 3 for n in range(len(DATA.labels))]), "not binary"),
    "not a pipeline": (LogisticRegression(), "not a two-step scikit-learn pipeline"),
    "another token pattern": (fitted(TfidfVectorizer(token_pattern=r"(?u)\b(\w\w+)\b")),  # noqa: S106
                              "token_pattern="),
    "4-grams": (fitted(TfidfVectorizer(ngram_range=(1, 4))), "ngram_range=(1, 4)"),
}  # fmt: skip


@pytest.mark.parametrize(("model", "reason"), NOT_COMPILABLE.values(), ids=NOT_COMPILABLE.keys())
def test_a_shape_it_cannot_reproduce_is_not_compiled(model, reason):
    with pytest.raises(NotCompilable, match=re.escape(reason)):
        compile_pipeline(model)


def test_the_sigmoid_never_overflows():
    assert sigmoid(1000.0) == 1.0
    assert sigmoid(-1000.0) == 0.0
    assert sigmoid(0.0) == 0.5
    assert math.isclose(sigmoid(-30.0), 1 / (1 + math.exp(30.0)), rel_tol=1e-15)


def artifact(changes: dict) -> bytes:
    """The compiled MODEL with `changes` ({"section.key": value}) made to it."""
    document = json.loads(compile_pipeline(MODEL))
    for dotted, value in changes.items():
        section, key = dotted.split(".")
        document[section][key] = value
    return json.dumps(document).encode()


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (b"\x80not json", "not a compiled model"),
        (b"[]", "not a compiled model"),
        (artifact({"classifier.coef": [1.0]}), "coefficients for"),
        (artifact({"vectorizer.idf": [1.0, 2.0]}), "idf values for"),
        # A bundle cannot bring its own regex (a backtracking one would hold a worker).
        (artifact({"vectorizer.token_pattern": "(a|a)+$"}), "token_pattern '\\(a\\|a\\)"),
        (artifact({"vectorizer.ngram_range": [2, 1]}), "ngram_range"),
        # n-grams of every length would grow with the cube of a review's length.
        (artifact({"vectorizer.ngram_range": [1, 1_000_000_000]}), "max <= 3"),
        (artifact({"classifier.intercept": float("nan")}), "not a compiled model"),
        (
            artifact({"classifier.coef": [float("inf")] * len(MODEL[0].vocabulary_)}),
            "not a compiled model",
        ),
        (artifact({"vectorizer.idf": [1e300] * len(MODEL[0].vocabulary_)}), "less than or equal"),
        (artifact({"vectorizer.terms": ["a"] * len(MODEL[0].vocabulary_)}), "a term appears twice"),
        (artifact({"vectorizer.kind": "count"}), "a count vectorizer has no idf"),
        (artifact({"classifier.intercept": "NaN?"}), "not a compiled model"),
        (artifact({"vectorizer.extra": 1}), "not a compiled model"),
    ],
)
def test_a_malformed_artifact_is_refused(data, problem):
    with pytest.raises(CompiledModelError, match=problem):
        CompiledScorer.from_bytes(data)


# The bundle: compiled scorer first, nothing unpickled, samples checked.


def test_a_published_bundle_is_served_by_its_compiled_scorer_without_unpickling(
    registry_copy, monkeypatch
):
    import joblib

    monkeypatch.setattr(joblib, "load", lambda *_: pytest.fail("unpickled a compiled bundle"))
    bundle = registry_copy.load()
    assert bundle.model is None
    scorer = Scorer(bundle)
    assert scorer.engine == "compiled"
    assert len(bundle.metadata.samples) >= len(EDGE_CASES)


def test_both_engines_give_the_same_scores(registry_copy):
    compiled = Scorer(registry_copy.load(engine="compiled"))
    reference = Scorer(registry_copy.load(engine="scikit-learn"))
    assert reference.engine == "scikit-learn"
    texts = [*TEXTS[:50], *EDGE_CASES]
    for a, b in zip(compiled.scores(texts), reference.scores(texts), strict=True):
        assert abs(a - b) <= AGREEMENT_TOLERANCE


def rewrite(registry, name: str, change) -> None:
    """Changes one bundle file and records its new sha256, as someone with write access to
    the registry could: only the samples can then tell."""
    bundle_dir = registry.path_of(registry.current_version())
    data = change((bundle_dir / name).read_bytes())
    (bundle_dir / name).write_bytes(data)
    if name == "scorer.json":
        metadata = json.loads((bundle_dir / "metadata.json").read_text())
        metadata["compiled"]["sha256"] = sha256_hex(data)
        (bundle_dir / "metadata.json").write_text(json.dumps(metadata))


def test_a_compiled_scorer_that_disagrees_with_its_samples_is_not_used(registry_copy):
    def nudge(data: bytes) -> bytes:
        document = json.loads(data)
        document["classifier"]["intercept"] += 1e-9
        return json.dumps(document).encode()

    rewrite(registry_copy, "scorer.json", nudge)
    with pytest.raises(BundleIntegrityError, match="another score than scikit-learn gave"):
        Scorer(registry_copy.load())
    Scorer(registry_copy.load(engine="scikit-learn"))  # the model itself still agrees


def test_samples_that_no_engine_reproduces_stop_both(registry_copy):
    def shift(data: bytes) -> bytes:
        document = json.loads(data)
        document["samples"][0]["positive"] = min(1.0, document["samples"][0]["positive"] + 1e-6)
        return json.dumps(document).encode()

    rewrite(registry_copy, "metadata.json", shift)
    for engine in ("compiled", "scikit-learn"):
        with pytest.raises(BundleIntegrityError, match="1 of"):
            Scorer(registry_copy.load(engine=engine))


def test_a_tampered_compiled_file_is_refused_by_its_sha256(registry_copy):
    bundle_dir = registry_copy.path_of(registry_copy.current_version())
    with open(bundle_dir / "scorer.json", "ab") as handle:
        handle.write(b" ")
    with pytest.raises(BundleIntegrityError, match="refusing to load a tampered"):
        registry_copy.load()


def test_a_bundle_without_a_compiled_scorer_is_served_by_scikit_learn(tmp_path, monkeypatch):
    def refuse(model, texts):
        raise NotCompilable("a shape it does not know")

    monkeypatch.setattr(train_module, "compile_pipeline", refuse)
    result = train_fixture_model(tmp_path)
    assert result.published.compiled is None
    assert result.not_compiled == "a shape it does not know"
    registry = ModelFolder(tmp_path)
    assert Scorer(registry.load()).engine == "scikit-learn"
    with pytest.raises(BundleError, match="has no compiled scorer"):
        registry.load(engine="compiled")


def test_a_count_model_is_compiled_too(tmp_path):
    result = train_fixture_model(tmp_path, **{"training.vectorizer.kind": "count"})
    assert result.published.compiled is not None
    assert Scorer(ModelFolder(tmp_path).load()).engine == "compiled"


def test_a_compiled_scorer_that_disagrees_with_its_pipeline_is_not_published(monkeypatch):
    """A shape compile.py lets through but the scorer does not reproduce (a future
    scikit-learn's other probability rule, say) is caught before publishing."""
    model = fitted(TfidfVectorizer())
    real = model.predict_proba
    monkeypatch.setattr(model, "predict_proba", lambda texts: real(texts) ** 1.0000001)
    with pytest.raises(NotCompilable, match="the compiled scorer gives 'good'"):
        compile_pipeline(model, ["a held-out review"])
