"""The gates' checks against real gunicorn servers: each passes on a sound service and
fails, saying why, on the fault it is there to catch."""

import hashlib
import json

import pytest

from sentiment.model import ModelFolder
from sentiment_release.gates.checks import configure
from sentiment_release.gates.checks.skew import SkewError, held_out_split
from sentiment_release.gates.runner import GateRunner
from sentiment_release.gates.subject import Subject
from sentiment_release.support.project import Project
from tests.conftest import FIXTURE_DATA, FIXTURE_UAT, ROOT, make_evidence_store, train_fixture_model

pytestmark = pytest.mark.integration


@pytest.fixture
def served(own_server, trained_registry, tmp_path):
    return own_server(tmp_path / "server", trained_registry, workers=1)


@pytest.fixture(scope="module")
def bundle(trained_registry):
    """As the gates hold it: the scikit-learn model, the reference."""
    return ModelFolder(trained_registry).load("current", "scikit-learn")


def subject_of(bundle, **changes) -> Subject:
    metadata = bundle.metadata
    fields = {"git_commit": "0" * 40, "source_tree": "1" * 40,
              "model_version": metadata.version, "model_sha256": metadata.sha256}  # fmt: skip
    return Subject(**{**fields, **changes})


def gate(tmp_path, bundle, url, checks, **subject_changes):
    """One gate run of `checks` (name -> policy entry) against `url`, as stage would."""
    runner = GateRunner(make_evidence_store(tmp_path / "evidence"), Project(ROOT), None,
                        lambda: FIXTURE_DATA)  # fmt: skip
    configured = [configure(name, entry) for name, entry in checks.items()]
    subject = subject_of(bundle, **subject_changes)
    record = runner.run("test", "test", subject, configured, url, lambda: bundle)
    return {check.name: check for check in record.checks}


def test_smoke_checks_pass_on_the_expected_build_and_fail_on_another(served, bundle, tmp_path):
    passed = gate(tmp_path / "a", bundle, served.base_url, {"smoke": None})["smoke"]
    assert passed.result == "passed", passed.failures
    # The key check is skipped where the service asks for none (test's config).
    assert passed.figures["passed"] == passed.figures["tests"] - 1 >= 6
    assert passed.figures["skipped"] == 1
    wrong = gate(tmp_path / "b", bundle, served.base_url, {"smoke": None},
                 model_sha256="0" * 64)["smoke"]  # fmt: skip
    assert wrong.result == "failed"
    assert wrong.figures["failed"] == 1


def test_uat_fails_a_model_that_gets_a_golden_review_wrong(served, bundle, tmp_path):
    # The fixture model calls "This phone is junk, it broke after two days." positive.
    team_set = {"uat": {"check": "pytest", "args": ["tests/uat"]}}
    result = gate(tmp_path / "a", bundle, served.base_url, team_set)["uat"]
    assert result.result == "failed"
    assert result.figures["failed"] >= 1
    fitting = {"uat": {"check": "pytest",
                       "args": ["tests/uat", "--uat-expectations", str(FIXTURE_UAT)]}}  # fmt: skip
    assert gate(tmp_path / "b", bundle, served.base_url, fitting)["uat"].result == "passed"


def test_the_served_model_reproduces_its_recorded_evaluation(served, bundle, tmp_path):
    skew = gate(tmp_path, bundle, served.base_url, {"skew": {"max_score_difference": 1e-9}})
    result = skew["skew"]
    assert result.result == "passed", result.failures
    assert result.figures["reviews"] == len(held_out_split(bundle, FIXTURE_DATA).test_texts)
    assert result.figures["max_score_difference"] <= 1e-9


def test_another_model_behind_the_url_is_caught(own_server, bundle, tmp_path):
    other_registry = tmp_path / "other"
    train_fixture_model(other_registry, **{"training.classifier.C": 0.05})
    other = own_server(tmp_path / "server", other_registry, workers=1)
    skew = gate(tmp_path, bundle, other.base_url, {"skew": {"max_score_difference": 1e-9}})
    assert skew["skew"].result == "failed"
    assert "scored differently by the service" in skew["skew"].failures[0]


def test_data_that_differs_from_the_evaluated_data_is_refused(bundle, tmp_path):
    changed = tmp_path / "data"
    changed.mkdir()
    for source in FIXTURE_DATA.glob("*.txt"):
        (changed / source.name).write_bytes(source.read_bytes())
    with (changed / "yelp_labelled.txt").open("a") as handle:
        handle.write("One more line.\t1\n")
    with pytest.raises(SkewError, match="is not the data model"):
        held_out_split(bundle, changed)


def test_the_load_test_measures_and_judges_against_its_thresholds(served, bundle, tmp_path):
    load = {
        "users": 2, "spawn_rate": 2, "run_time_seconds": 3,
        "max_failure_ratio": 0, "max_p95_ms": 5000, "max_p99_ms": 5000, "min_rps": 1_000_000,
    }  # fmt: skip
    result = gate(tmp_path, bundle, served.base_url, {"load": load})["load"]
    assert result.figures["requests"] > 0
    assert result.figures["failures"] == 0
    assert result.result == "failed"
    assert result.failures == [f"{result.figures['rps']:.1f} requests/s is below min_rps 1000000"]
    assert {report.rsplit("/", 1)[-1] for report in result.reports} >= {
        "load.html", "load_stats.csv",
    }  # fmt: skip


def test_the_latency_budget_is_per_request(served, bundle, tmp_path):
    generous = {"requests": 10, "max_p95_ms": 10_000, "max_ms": 10_000}
    result = gate(tmp_path / "a", bundle, served.base_url, {"latency": generous})["latency"]
    assert result.result == "passed", result.failures
    assert result.figures["requests"] == 10
    impossible = {"requests": 10, "max_p95_ms": 0.001, "max_ms": 0.001}
    failed = gate(tmp_path / "b", bundle, served.base_url, {"latency": impossible})["latency"]
    assert [message.split(" ")[0] for message in failed.failures] == ["p95", "the"]


def test_a_compiled_scorer_that_is_not_its_model_compiled_is_caught(
    served, registry_copy, tmp_path
):
    """A term only an attacker's reviews contain, with a weight of its own, re-hashed into
    the metadata: no sample or held-out review meets it, but the bytes differ."""
    bundle_dir = registry_copy.path_of(registry_copy.current_version())
    compiled = json.loads((bundle_dir / "scorer.json").read_text())
    compiled["vectorizer"]["terms"].append("zzqtrigger")
    compiled["vectorizer"]["idf"].append(1.0)
    compiled["classifier"]["coef"].append(-50.0)
    data = json.dumps(compiled).encode()
    (bundle_dir / "scorer.json").write_bytes(data)
    metadata = json.loads((bundle_dir / "metadata.json").read_text())
    metadata["compiled"]["sha256"] = hashlib.sha256(data).hexdigest()
    (bundle_dir / "metadata.json").write_text(json.dumps(metadata))
    doctored = registry_copy.load("current", "scikit-learn")
    skew = gate(tmp_path, doctored, served.base_url, {"skew": {"max_score_difference": 1e-12}})
    assert skew["skew"].result == "failed"
    assert "scorer.json is not what the bundle's model compiles to" in skew["skew"].failures[0]


def test_the_shadow_agreement_is_measured_on_the_service_and_judged(own_server, bundle, tmp_path):
    """A challenger beside the champion, in shadow mode on real gunicorn workers: the
    check sends held-out reviews, reads the agreement the service counted, and fails below
    min_agreement; without a challenger it passes unless one is required."""
    import shutil

    from sentiment.model.publish import set_current

    models = tmp_path / "models"
    shutil.copytree(bundle.path.parent.parent, models)
    champion = ModelFolder(models).current_version()
    challenger = train_fixture_model(models, **{"training.classifier.C": 0.05}).published
    set_current(ModelFolder(models), champion)
    ModelFolder(models).challenger_file.write_text(f"{challenger.version}\n")
    server = own_server(tmp_path / "server", models, workers=2,
                        settings={"SENTIMENT_MODEL__CHALLENGER__MODE": "shadow"})  # fmt: skip

    measured = gate(tmp_path / "a", bundle, server.base_url,
                    {"shadow": {"min_agreement": 0.0, "reviews": 40}})["shadow"]  # fmt: skip
    assert measured.result == "passed", measured.failures
    assert measured.figures["reviews"] == 40
    agreement = measured.figures["agreement"]
    assert 0 < agreement < 1  # a much flatter model: it disagrees now and then
    impossible = {"shadow": {"min_agreement": 1.0, "reviews": 40}}
    failed = gate(tmp_path / "b", bundle, server.base_url, impossible)["shadow"]
    assert failed.result == "failed"
    assert "below min_agreement 100%" in failed.failures[0]

    alone = own_server(tmp_path / "alone", bundle.path.parent.parent, workers=1)
    passed = gate(tmp_path / "c", bundle, alone.base_url,
                  {"shadow": {"min_agreement": 0.9, "reviews": 10}})["shadow"]  # fmt: skip
    assert (passed.result, passed.figures) == ("passed", {"challenger": False})
    required = {"shadow": {"min_agreement": 0.9, "reviews": 10, "require_challenger": True}}
    refused = gate(tmp_path / "d", bundle, alone.base_url, required)["shadow"]
    assert "no challenger runs beside the champion" in refused.failures[0]
