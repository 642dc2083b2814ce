"""Champion against challenger (sentiment_release/training/challenger.py): the sets, the tolerance,
the newest feedback kept out of training. tests/integration/test_model_store.py runs `sentiment
retrain --publish` end to end against a registry."""

from dataclasses import dataclass
from types import SimpleNamespace

import pytest

from sentiment_release.training.challenger import (
    EvaluationSet,
    compare,
    comparison_markdown,
    evaluation_sets,
    split_feedback,
)
from tests.conftest import FIXTURE_DATA, FIXTURE_UAT


@dataclass
class FixedScorer:
    """Scores each text as the table says."""

    version: str
    table: dict[str, float]
    metadata = SimpleNamespace(threshold=0.5)

    def scores(self, texts):
        return [self.table[text] for text in texts]


SET = EvaluationSet("held_out", ["a", "b", "c", "d"], [1, 1, 0, 0])
RIGHT = {"a": 0.9, "b": 0.8, "c": 0.2, "d": 0.1}
ONE_WRONG = {"a": 0.9, "b": 0.4, "c": 0.2, "d": 0.1}


def test_a_challenger_worse_beyond_the_tolerance_is_refused_and_says_where():
    comparison = compare(FixedScorer("old", RIGHT), FixedScorer("new", ONE_WRONG), [SET], 0.01,
                         0.001)  # fmt: skip
    assert not comparison.accepted
    assert comparison.worse[0].startswith("held_out accuracy: 0.7500 against the champion's 1.0000")
    assert "REFUSED" in comparison_markdown(comparison)


def test_better_somewhere_and_worse_nowhere_beyond_the_tolerance_it_is_accepted():
    better = compare(FixedScorer("old", ONE_WRONG), FixedScorer("new", RIGHT), [SET], 0, 0.001)
    assert better.accepted
    assert better.better[0] == "held_out accuracy: 1.0000 against the champion's 0.7500"
    assert "Better than the champion by at least 0.001" in comparison_markdown(better)
    # Worse on one set within the tolerance, better on another: a trade it may make.
    other = EvaluationSet("feedback", ["b", "c"], [0, 0])
    traded = compare(FixedScorer("old", RIGHT), FixedScorer("new", ONE_WRONG), [SET, other],
                     0.5, 0.001)  # fmt: skip
    assert traded.accepted, traded.worse


def test_an_identical_retrain_proposes_nothing():
    """The same data gives the same model: equal everywhere is not better, and a weekly
    retrain would otherwise push a version and open a pull request every week."""
    same = compare(FixedScorer("old", RIGHT), FixedScorer("new", dict(RIGHT)), [SET], 0.01, 0.001)
    assert not same.accepted
    assert same.worse == []
    assert same.better == []
    assert "nothing to propose" in comparison_markdown(same)
    # Better by less than min_gain is not better either.
    nudged = {**RIGHT, "a": 0.9000001}
    assert not compare(FixedScorer("old", RIGHT), FixedScorer("new", nudged), [SET], 0.01,
                       0.001).accepted  # fmt: skip


def test_without_a_champion_the_challenger_is_accepted_and_compared_with_nothing():
    comparison = compare(None, FixedScorer("new", ONE_WRONG), [SET], 0.0, 0.001)
    assert comparison.accepted
    assert "champion" not in comparison.results["held_out"]
    assert "none pinned" in comparison_markdown(comparison)


def test_a_one_class_set_is_judged_on_accuracy_alone():
    positives = EvaluationSet("feedback", ["a", "b"], [1, 1])
    comparison = compare(FixedScorer("old", RIGHT), FixedScorer("new", ONE_WRONG), [positives],
                         0.01, 0.001)  # fmt: skip
    assert set(comparison.results["feedback"]["challenger"]) == {"accuracy", "support"}
    assert comparison.worse == [
        "feedback accuracy: 0.5000 against the champion's 1.0000 (tolerance 0.01)"
    ]


def test_the_newest_feedback_is_kept_out_of_training_for_the_comparison(tmp_path):
    older, newer = tmp_path / "a.txt", tmp_path / "b.txt"
    older.write_text("first\t1\nsecond\t0\n")
    newer.write_text("third\t1\nfourth\t0\n")
    train, recent = split_feedback([older, newer], recent=3)
    assert train == [("first", 1)]
    assert recent == [("second", 0), ("third", 1), ("fourth", 0)]
    assert split_feedback([older], recent=0) == ([("first", 1), ("second", 0)], [])


@pytest.mark.parametrize("recent", [[], [("great", 1), ("awful", 0)]])
def test_the_sets_are_the_held_out_split_the_uat_and_the_recent_feedback(recent):
    sets = evaluation_sets(FIXTURE_DATA, ["yelp", "amazon", "imdb"], 0.2, 42, FIXTURE_UAT,
                           recent)  # fmt: skip
    names = [evaluation.name for evaluation in sets]
    assert names == ["held_out", "uat", *(["feedback"] if recent else [])]
    assert len(sets[0].texts) == 15  # 20% of the fixture's 72 reviews, stratified
    assert set(sets[1].labels) == {0, 1}
