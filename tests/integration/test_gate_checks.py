"""The gates' checks against real gunicorn servers: each passes on a sound service and
fails, saying why, on the fault it is there to catch."""

from pathlib import Path

import pytest

from gates.checks import run_pytest
from gates.load_test import run_load_test
from gates.skew import SkewError, check_latency, check_skew, held_out_split
from model_registry import ModelRegistry
from settings.schema import LatencyBudgetSettings, LoadTestSettings, SkewSettings
from tests.conftest import FIXTURE_DATA, LENIENT_GATE, make_settings

pytestmark = pytest.mark.integration
FIXTURE_UAT = FIXTURE_DATA.parent / "uat" / "expectations.yaml"


@pytest.fixture
def served(own_server, trained_registry, tmp_path):
    return own_server(tmp_path / "server", trained_registry, workers=1)


@pytest.fixture(scope="module")
def bundle(trained_registry):
    return ModelRegistry(trained_registry).load("current")


def suite(name, args, tmp_path):
    reports = tmp_path / name
    reports.mkdir()
    return run_pytest(name, args, reports, tmp_path)


def test_smoke_checks_pass_on_the_expected_build_and_fail_on_another(served, bundle, tmp_path):
    args = ["tests/smoke", "--base-url", served.base_url, "--expected-environment", "test"]
    sha256 = bundle.metadata.sha256
    passed = suite("smoke", [*args, "--expected-model-sha256", sha256], tmp_path)
    assert passed.passed, passed.failures
    assert passed.figures["passed"] == passed.figures["tests"] >= 6
    wrong = suite("wrong", [*args, "--expected-model-sha256", "0" * 64], tmp_path)
    assert not wrong.passed
    assert wrong.figures["failed"] == 1


def test_uat_fails_a_model_that_gets_a_golden_review_wrong(served, tmp_path):
    # The fixture model calls "This phone is junk, it broke after two days." positive.
    team_set = suite("uat", ["tests/uat", "--base-url", served.base_url], tmp_path)
    assert not team_set.passed
    assert team_set.figures["failed"] >= 1
    fitting = ["tests/uat", "--base-url", served.base_url, "--uat-expectations", str(FIXTURE_UAT)]
    assert suite("fitting", fitting, tmp_path).passed


def test_the_served_model_reproduces_its_recorded_evaluation(served, bundle):
    split = held_out_split(bundle, FIXTURE_DATA)
    result = check_skew(served.base_url, bundle, split, SkewSettings(max_score_difference=1e-9), 4)
    assert result.passed, result.failures
    assert result.figures["reviews"] == len(split.test_texts)
    assert result.figures["max_score_difference"] <= 1e-9


def test_another_model_behind_the_url_is_caught(own_server, bundle, tmp_path):
    from training.train import train

    other_registry = tmp_path / "other"
    settings = make_settings(
        **LENIENT_GATE,
        **{"model.registry_dir": other_registry, "training.classifier.C": 0.05},
    )
    train(settings, FIXTURE_DATA)
    other = own_server(tmp_path / "server", other_registry, workers=1)
    split = held_out_split(bundle, FIXTURE_DATA)
    result = check_skew(other.base_url, bundle, split, SkewSettings(max_score_difference=1e-9), 64)
    assert not result.passed
    assert "scored differently by the service" in result.failures[0]


def test_data_that_differs_from_the_evaluated_data_is_refused(bundle, tmp_path):
    changed = tmp_path / "data"
    changed.mkdir()
    for source in FIXTURE_DATA.glob("*.txt"):
        (changed / source.name).write_bytes(source.read_bytes())
    with (changed / "yelp_labelled.txt").open("a") as handle:
        handle.write("One more line.\t1\n")
    with pytest.raises(SkewError, match="is not the data model"):
        held_out_split(bundle, changed)


def test_the_load_test_measures_and_judges_against_its_thresholds(served, tmp_path):
    load = LoadTestSettings(
        users=2, spawn_rate=2, run_time_seconds=3,
        max_failure_ratio=0, max_p95_ms=5000, max_p99_ms=5000, min_rps=1_000_000,
    )  # fmt: skip
    result = run_load_test(served.base_url, load, tmp_path, tmp_path)
    assert result.figures["requests"] > 0
    assert result.figures["failures"] == 0
    assert not result.passed
    assert result.failures == [f"{result.figures['rps']:.1f} requests/s is below min_rps 1000000"]
    assert {Path(report).name for report in result.reports} >= {"locust.html", "locust_stats.csv"}


def test_the_latency_budget_is_per_request(served):
    texts = ["Great phone.", "Awful food."]
    generous = LatencyBudgetSettings(requests=10, max_p95_ms=10_000, max_ms=10_000)
    result = check_latency(served.base_url, texts, generous)
    assert result.passed, result.failures
    assert result.figures["requests"] == 10
    impossible = LatencyBudgetSettings(requests=10, max_p95_ms=0.001, max_ms=0.001)
    failed = check_latency(served.base_url, texts, impossible)
    assert [message.split(" ")[0] for message in failed.failures] == ["p95", "the"]
