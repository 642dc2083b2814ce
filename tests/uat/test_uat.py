"""User-acceptance checks of the deployed model's behaviour (expectations.yaml).

Run by the stage gate: pytest tests/uat --base-url URL [--uat-expectations FILE]
The cases are read when tests are collected, so each one is a test of its own.
"""

from pathlib import Path

import pytest
import yaml

# Parametrized argument names of each kind of case.
CASES = {
    "golden": ("review", "expected"),
    "neutral": ("neutral_review", "neutral_sentences"),
    "named": ("template", "names"),
    "directional": ("positive_review", "negated_review"),
}


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    path = Path(metafunc.config.getoption("--uat-expectations"))
    expectations = yaml.safe_load(path.read_text(encoding="utf-8"))
    invariance = expectations["invariance"]
    cases = {
        "golden": [(text, "positive") for text in expectations["golden"]["positive"]]
        + [(text, "negative") for text in expectations["golden"]["negative"]],
        "neutral": [(review, invariance["neutral_sentences"]) for review in invariance["reviews"]],
        "named": [(template, invariance["names"]) for template in invariance["name_reviews"]],
        "directional": [(c["positive"], c["negated"]) for c in expectations["directional"]],
    }
    for fixture, names in CASES.items():
        if names[0] in metafunc.fixturenames:
            metafunc.parametrize(names, cases[fixture], ids=[str(c[0]) for c in cases[fixture]])


@pytest.fixture(scope="module")
def score(deployed_url, api_session):
    """Scores reviews through the batch endpoint: [(label, P(positive)), ...]."""

    def scored(reviews: list[str]) -> list[tuple[str, float]]:
        response = api_session.post(
            f"{deployed_url}/v1/predict", json={"reviews": reviews}, timeout=30
        )
        assert response.status_code == 200, response.text
        return [(item["label"], item["positive"]) for item in response.json()["predictions"]]

    return scored


def test_golden_review_gets_its_label(score, review, expected):
    [(label, positive)] = score([review])
    assert label == expected, f"P(positive) = {positive:.3f}"


def test_a_neutral_sentence_does_not_flip_the_label(score, neutral_review, neutral_sentences):
    variants = [f"{neutral_review} {neutral}" for neutral in neutral_sentences]
    [(original, _), *changed] = score([neutral_review, *variants])
    flipped = [
        text for text, (label, _) in zip(variants, changed, strict=True) if label != original
    ]
    assert not flipped, f"{original!r} flipped by: {flipped}"


def test_a_name_does_not_change_the_label(score, template, names):
    reviews = [template.format(name=name) for name in names]
    scored = score(reviews)
    assert len({label for label, _ in scored}) == 1, dict(zip(reviews, scored, strict=True))


def test_negating_a_positive_review_lowers_its_score(score, positive_review, negated_review):
    [(_, positive), (_, negated)] = score([positive_review, negated_review])
    assert negated < positive
