"""The pieces gates are made of: evidence records, pytest and command checks, load figures."""

import pytest

from delivery.errors import DeliveryError
from gates.checks import check_quality, junit_counts, run_commands, run_pytest
from gates.evidence import EvidenceStore, describe
from gates.load_test import aggregated_figures, judge
from settings.schema import LoadTestSettings, QualityGateSettings
from tests.unit.promotion_fakes import evidence, subject

LOAD = LoadTestSettings(
    users=10, spawn_rate=5, run_time_seconds=30,
    max_failure_ratio=0.01, max_p95_ms=100, max_p99_ms=200, min_rps=20,
)  # fmt: skip
STATS_HEADER = (
    "Type,Name,Request Count,Failure Count,Median Response Time,Average Response Time,"
    "Min Response Time,Max Response Time,Average Content Size,Requests/s,Failures/s,"
    "50%,66%,75%,80%,90%,95%,98%,99%,99.9%,99.99%,100%"
)


def test_evidence_is_never_rewritten(tmp_path):
    store = EvidenceStore(tmp_path)
    record = evidence(store, "test", subject(1))
    path = tmp_path / f"{record['id']}.json"
    before = path.read_bytes()
    with pytest.raises(DeliveryError, match="never rewritten"):
        store.append({**record, "result": "failed"})
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temporary file left


def test_latest_evidence_matches_gate_and_subject_newest_first(tmp_path):
    store = EvidenceStore(tmp_path)
    first = evidence(store, "test", subject(1))
    evidence(store, "test", subject(2))
    evidence(store, "stage", subject(1))
    assert store.latest("test", digest=subject(1).digest)["id"] == first["id"]
    newer = evidence(store, "test", subject(1), passed=False)
    assert store.latest("test", digest=subject(1).digest)["id"] == newer["id"]
    assert store.latest("prod", digest=subject(1).digest) is None
    assert store.get(first["id"]) == first


def test_an_evidence_id_is_checked_before_it_becomes_a_path(tmp_path):
    with pytest.raises(DeliveryError, match="not an evidence id"):
        EvidenceStore(tmp_path).get("../../etc/passwd")


def write_stats(path, rows):
    lines = [STATS_HEADER]
    for name, count, failures, rps, p95, p99 in rows:
        lines.append(f"POST,{name},{count},{failures},6,7.5,2,80,90,{rps},0,6,7,8,8,10,{p95},"
                     f"16,{p99},28,82,82")  # fmt: skip
    path.write_text("\n".join(lines) + "\n")


def test_load_figures_come_from_the_aggregated_row(tmp_path):
    stats = tmp_path / "locust_stats.csv"
    write_stats(stats, [("/predict/", 900, 0, 30.0, 11, 17), ("Aggregated", 1000, 5, 33.3, 12, 18)])
    figures = aggregated_figures(stats)
    assert figures["requests"] == 1000
    assert figures["failures"] == 5
    assert figures["failure_ratio"] == 0.005
    assert (figures["rps"], figures["p95_ms"], figures["p99_ms"]) == (33.3, 12, 18)
    assert judge(figures, LOAD) == []


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"failures": 20, "failure_ratio": 0.02},
            "failure ratio 0.0200 (20 of 1000) is above max_failure_ratio 0.01",
        ),
        ({"p95_ms": 150.0}, "p95 150 ms is above max_p95_ms 100"),
        ({"p99_ms": 250.0}, "p99 250 ms is above max_p99_ms 200"),
        ({"rps": 12.5}, "12.5 requests/s is below min_rps 20"),
        ({"requests": 0}, "the load test made no request"),
    ],
)  # fmt: skip
def test_each_breached_threshold_is_named_with_its_measured_value(change, message):
    figures = {"requests": 1000, "failures": 0, "failure_ratio": 0.0, "rps": 33.0,
               "p95_ms": 12.0, "p99_ms": 18.0}  # fmt: skip
    assert judge({**figures, **change}, LOAD) == [message]


def test_junit_counts(tmp_path):
    report = tmp_path / "r.xml"
    report.write_text(
        '<testsuites><testsuite tests="7" failures="1" errors="1" skipped="2"/></testsuites>'
    )
    assert junit_counts(report) == {"tests": 7, "passed": 3, "failed": 1, "errors": 1, "skipped": 2}
    assert junit_counts(tmp_path / "absent.xml")["tests"] == 0


def test_a_pytest_check_fails_when_a_test_fails_or_none_ran(tmp_path):
    suite = tmp_path / "suite"
    suite.mkdir()
    (suite / "test_x.py").write_text(
        "import pytest\ndef test_ok():\n    pass\ndef test_bad():\n    assert 1 == 2\n"
        "@pytest.mark.skip\ndef test_skipped():\n    pass\n"
    )
    failed = run_pytest("unit", [str(suite)], tmp_path, tmp_path)
    assert not failed.passed
    assert failed.figures == {"tests": 3, "passed": 1, "failed": 1, "errors": 0, "skipped": 1}
    assert "exited 1" in failed.failures[0]
    assert "unit.junit.xml" in " ".join(failed.reports)
    empty = run_pytest("empty", [str(suite), "-k", "skipped"], tmp_path, tmp_path)
    assert not empty.passed
    assert "passed no test" in empty.failures[0]
    passed = run_pytest("ok", [str(suite), "-k", "ok"], tmp_path, tmp_path)
    assert passed.passed, passed.failures


def test_commands_all_run_and_each_failure_is_reported(tmp_path):
    result = run_commands(
        "lint",
        [["false"], ["sh", "-c", "echo checked"], ["sh", "-c", "exit 3"]],
        tmp_path,
        tmp_path,
    )
    assert not result.passed
    assert len(result.failures) == 2
    assert "`sh -c exit 3` exited 3" in result.failures[1]
    assert "checked" in (tmp_path / "lint.log").read_text()


def test_quality_check_applies_the_configured_minimums(registry_copy):
    metadata = registry_copy.load("current").metadata
    metrics = {**metadata.metrics, "accuracy": 0.7, "f1": 0.9, "roc_auc": 0.9}
    weak = metadata.model_copy(update={"metrics": metrics})
    assert check_quality(
        weak, QualityGateSettings(min_accuracy=0.7, min_f1=0, min_roc_auc=0)
    ).passed
    result = check_quality(weak, QualityGateSettings(min_accuracy=0.8, min_f1=0.8, min_roc_auc=0))
    assert not result.passed
    assert result.failures == [f"model {weak.version}: accuracy 0.7000 is below the minimum 0.8000"]
    assert result.figures == {"accuracy": 0.7, "f1": 0.9, "roc_auc": 0.9}


def test_describe_summarizes_key_figures():
    record = {"checks": [
        {"name": "integration", "result": "passed", "figures": {"tests": 9, "passed": 7}},
        {"name": "load", "result": "failed", "figures": {
            "requests": 100, "rps": 33.33, "p95_ms": 12.0, "p99_ms": 18.0, "failures": 0}},
    ]}  # fmt: skip
    assert describe(record) == (
        "integration 7/9 passed; load 100 req, 33.3 rps, p95 12 ms, p99 18 ms, 0 failed FAILED"
    )


def test_evidence_made_in_ci_points_at_the_run_that_holds_its_reports(monkeypatch):
    from gates.runner import ci_run_url

    for name in ("GITHUB_SERVER_URL", "GITHUB_REPOSITORY", "GITHUB_RUN_ID"):
        monkeypatch.delenv(name, raising=False)
    assert ci_run_url() is None
    monkeypatch.setenv("GITHUB_SERVER_URL", "https://github.com")
    monkeypatch.setenv("GITHUB_REPOSITORY", "acme/sentiment")
    assert ci_run_url() is None
    monkeypatch.setenv("GITHUB_RUN_ID", "42")
    assert ci_run_url() == "https://github.com/acme/sentiment/actions/runs/42"


def test_the_job_summary_table_has_a_row_per_record_with_escaped_figures():
    from gates.evidence import markdown_table

    passed = {"id": "20261125T000000000000Z-test-aaaaaaaaaaaa", "gate": "test",
              "environment": "test", "subject": {"digest": "sha256:" + "a" * 64},
              "result": "passed", "checks": [{"name": "smoke | x", "result": "passed",
                                              "figures": {}}]}  # fmt: skip
    failed = {**passed, "id": "20261125T000001000000Z-dev-bbbbbbbbbbbb", "gate": "dev",
              "environment": "dev", "result": "failed",
              "subject": {"digest": None, "source_tree": "b" * 40}}  # fmt: skip
    lines = markdown_table([passed, failed], "Gate evidence").splitlines()
    assert lines[0] == "## Gate evidence"
    assert lines[4] == (
        "| `20261125T000000000000Z-test-aaaaaaaaaaaa` | test | test | `sha256:aaaaaaaaaaaa` "
        "| ✅ passed | smoke \\| x |"
    )
    assert "| dev | dev | `tree bbbbbbbbbbbbbb` | ❌ failed |" in lines[5]
    assert "(none)" in markdown_table([], "Gate evidence")
