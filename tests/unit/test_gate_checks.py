"""The pieces gates are made of: the check registry, evidence records, the pytest, command,
quality and load checks, and how records are summarised."""

from dataclasses import replace

import pytest

from sentiment_release.gates.checks import CHECKS, Baseline, Check, configure
from sentiment_release.gates.checks.base import CheckOptions
from sentiment_release.gates.checks.capacity import file_sha256
from sentiment_release.gates.checks.load import LoadOptions, aggregated_figures, judge
from sentiment_release.gates.checks.pytest_suite import junit_counts
from sentiment_release.gates.evidence import EvidenceError
from sentiment_release.gates.runner import GateRunner
from sentiment_release.gates.summary import describe, markdown_table
from sentiment_release.promotion.ledger import Ledger
from sentiment_release.promotion.signing_step import Batch, sign_pending
from sentiment_release.support.project import Project
from sentiment_release.support.provenance import ci_run_url
from tests.conftest import FIXTURE_DATA, ROOT, make_evidence_store
from tests.unit.promotion_fakes import evidence, subject

LOAD = LoadOptions(
    users=10, spawn_rate=5, run_time_seconds=30,
    max_failure_ratio=0.01, max_p95_ms=100, max_p99_ms=200, min_rps=20,
)  # fmt: skip
STATS_HEADER = (
    "Type,Name,Request Count,Failure Count,Median Response Time,Average Response Time,"
    "Min Response Time,Max Response Time,Average Content Size,Requests/s,Failures/s,"
    "50%,66%,75%,80%,90%,95%,98%,99%,99.9%,99.99%,100%"
)


def test_every_documented_kind_is_registered():
    documented = {"quality", "commands", "pytest", "smoke", "load", "capacity", "skew", "latency"}
    assert documented <= set(CHECKS)


@pytest.mark.parametrize(
    ("name", "entry", "needs_service"),
    [
        ("smoke", None, True),
        (
            "load",
            {
                "users": 1,
                "spawn_rate": 1,
                "run_time_seconds": 1,
                "max_failure_ratio": 0,
                "max_p95_ms": 1,
                "max_p99_ms": 1,
                "min_rps": 0,
            },
            True,
        ),
        ("skew", {"max_score_difference": 0}, True),
        ("latency", {"requests": 1, "max_p95_ms": 1, "max_ms": 1}, True),
        ("quality", {"min_accuracy": 0, "min_f1": 0, "min_roc_auc": 0}, False),
        ("unit", {"check": "pytest", "args": ["tests/unit"]}, False),
        ("uat", {"check": "pytest", "args": ["tests/uat"], "needs_service": True}, True),
    ],
)
def test_which_checks_talk_to_the_deployed_service(name, entry, needs_service):
    assert configure(name, entry).needs_service is needs_service


@pytest.mark.parametrize(
    ("name", "entry", "message"),
    [
        ("typo", None, r"no check of kind 'typo' \(kinds: "),
        ("load", {"users": 0}, r"load options: users: Input should be greater than or equal to 1"),
        ("unit", {"check": "pytest"}, r"pytest options: args: Field required"),
        ("skew", {"max_score_difference": 1e-9, "tolerance": 1}, r"tolerance: Extra inputs"),
        ("../../escaped", {"check": "smoke"}, r"'../../escaped' is not a check name"),
        ("deploy", {"check": "smoke"}, r"'deploy' is not a check name"),
        ("skew", {"check": ["skew"]}, r"check: must name a kind, not \['skew'\]"),
        ("smoke", ["args"], r"the options of 'smoke' must be a mapping"),
    ],
)
def test_a_bad_check_entry_says_what_is_wrong(name, entry, message):
    with pytest.raises(ValueError, match=message):
        configure(name, entry)


def test_the_name_is_the_kind_unless_check_says_otherwise():
    lint = configure("lint", {"check": "commands", "commands": [["true"]]})
    assert (lint.name, lint.kind, lint.options.commands) == ("lint", "commands", [["true"]])
    assert configure("smoke", None).kind == "smoke"


def gate(tmp_path, checks, url=None):
    store = make_evidence_store(tmp_path / "evidence")
    # The suites these tests write live in a temporary directory: shown to the checks.
    isolation = replace(store.keyring.isolation(), readable=(tmp_path.parent,))
    runner = GateRunner(store, Project(ROOT), None, lambda: FIXTURE_DATA, isolation=isolation)
    return runner.run("test", "test", subject(1), checks, url), store


def signed(store):
    ledger = Ledger(store.root.parent / "ledger", store.keyring, store.root.parent / "pending")
    sign_pending("test", store.keyring.signer("test"), store, ledger, 0, Batch(dict(store.written)))


def test_a_gate_records_each_check_its_kind_and_options(tmp_path):
    record, store = gate(
        tmp_path, [configure("lint", {"check": "commands", "commands": [["true"]]})]
    )
    assert record.passed
    [check] = record.checks
    assert (check.name, check.check, check.options["commands"]) == ("lint", "commands", [["true"]])
    # The gate holds no key: its record waits, unsigned, for the signing step.
    assert [found for found, _ in store.unsigned("test")] == [record]
    assert store.records() == []
    signed(store)
    assert store.get(record.id, record.gate) == record
    assert store.unsigned("test") == []


def test_a_check_that_needs_a_service_fails_without_one_and_says_why(tmp_path):
    record, _ = gate(tmp_path, [configure("smoke", None)])
    assert not record.passed
    assert "needs a deployed service" in record.failures[0]


class Exploding(Check):
    kind = "exploding"

    def check(self, context, result):
        raise ValueError("a metric recorded as text")


def test_a_check_that_crashes_is_a_failed_check_and_the_gate_still_records(tmp_path):
    record, store = gate(tmp_path, [Exploding("boom", CheckOptions())])
    assert not record.passed
    assert "boom: crashed: ValueError: a metric recorded as text" in record.failures[0]
    signed(store)
    assert store.get(record.id, record.gate) == record


def test_a_gate_without_checks_never_passes(tmp_path):
    record, _ = gate(tmp_path, [])
    assert record.result == "failed"


def test_evidence_is_never_rewritten(tmp_path):
    store = make_evidence_store(tmp_path)
    record = evidence(store, "test", subject(1))
    path = tmp_path / f"{record.id}.json"
    before = path.read_bytes()
    with pytest.raises(EvidenceError, match="never rewritten"):
        store.append(record.model_copy(update={"result": "failed"}), store.keyring.signer("test"))
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temporary file left


def test_latest_evidence_matches_gate_and_subject_newest_first(tmp_path):
    store = make_evidence_store(tmp_path)
    first = evidence(store, "test", subject(1))
    evidence(store, "test", subject(2))
    evidence(store, "stage", subject(1))
    assert store.latest("test", digest=subject(1).digest).id == first.id
    newer = evidence(store, "test", subject(1), passed=False)
    assert store.latest("test", digest=subject(1).digest).id == newer.id
    assert store.latest("prod", digest=subject(1).digest) is None
    assert store.get(first.id, "test") == first


def test_an_evidence_id_is_checked_before_it_becomes_a_path(tmp_path):
    with pytest.raises(EvidenceError, match="not an evidence id"):
        make_evidence_store(tmp_path).get("../../etc/passwd", "test")


def test_a_record_filed_under_another_id_is_refused(tmp_path):
    store = make_evidence_store(tmp_path)
    one, other = evidence(store, "test", subject(1)), evidence(store, "test", subject(2))
    (tmp_path / f"{one.id}.json").write_bytes((tmp_path / f"{other.id}.json").read_bytes())
    with pytest.raises(EvidenceError, match=f"holds the record of {other.id}"):
        store.get(one.id, "test")


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
    failed, _ = gate(tmp_path / "a", [configure("unit", {"check": "pytest", "args": [str(suite)]})])
    [check] = failed.checks
    assert not failed.passed
    assert check.figures == {"tests": 3, "passed": 1, "failed": 1, "errors": 0, "skipped": 1}
    assert "exited 1" in check.failures[0]
    assert "unit.junit.xml" in " ".join(check.reports)
    empty = configure("empty", {"check": "pytest", "args": [str(suite), "-k", "skipped"]})
    record, _ = gate(tmp_path / "b", [empty])
    assert "passed no test" in record.checks[0].failures[0]
    good = configure("ok", {"check": "pytest", "args": [str(suite), "-k", "ok"]})
    assert gate(tmp_path / "c", [good])[0].passed


def test_commands_all_run_and_each_failure_is_reported(tmp_path):
    lint = configure("lint", {"check": "commands", "commands": [
        ["false"], ["sh", "-c", "echo checked"], ["sh", "-c", "exit 3"]]})  # fmt: skip
    record, store = gate(tmp_path, [lint])
    [check] = record.checks
    assert not record.passed
    assert len(check.failures) == 2
    assert "`sh -c 'exit 3'` exited 3" in check.failures[1]
    assert "checked" in (store.root / check.reports[0]).read_text()


def test_quality_check_applies_its_own_minimums(tmp_path, registry_copy):
    bundle = registry_copy.load("current")
    weak = bundle.metadata.model_copy(
        update={"metrics": {**bundle.metadata.metrics, "accuracy": 0.7, "f1": 0.9, "roc_auc": 0.9}}
    )
    weak_bundle = type(bundle)(bundle.path, weak, bundle.model)
    store = make_evidence_store(tmp_path / "evidence")
    runner = GateRunner(store, Project(ROOT), None, lambda: FIXTURE_DATA)

    def quality(minimum: float):
        check = configure("quality", {"min_accuracy": minimum, "min_f1": 0, "min_roc_auc": 0})
        return runner.run("dev", "dev", subject(1), [check], None, lambda: weak_bundle)

    assert quality(0.7).passed
    failed = quality(0.8)
    assert failed.checks[0].failures == [
        f"model {weak.version}: accuracy 0.7000 is below the minimum 0.8000"
    ]
    assert failed.checks[0].figures == {"accuracy": 0.7, "f1": 0.9, "roc_auc": 0.9}


def test_each_check_summarises_its_own_figures(tmp_path):
    record = evidence(make_evidence_store(tmp_path), "test", subject(1))
    checks = [
        record.checks[0].model_copy(update={"name": "integration", "check": "pytest",
                                            "figures": {"tests": 9, "passed": 7}}),
        record.checks[0].model_copy(update={"name": "load", "check": "load", "result": "failed",
            "figures": {"requests": 100, "rps": 33.33, "p95_ms": 12.0, "p99_ms": 18.0,
                        "failures": 0}}),
    ]  # fmt: skip
    assert describe(record.model_copy(update={"checks": checks})) == (
        "integration 7/9 passed; load 100 req, 33.3 rps, p95 12 ms, p99 18 ms, 0 failed FAILED"
    )


def test_evidence_made_in_ci_points_at_the_run_that_holds_its_reports(monkeypatch):
    for name in ("GITHUB_SERVER_URL", "GITHUB_REPOSITORY", "GITHUB_RUN_ID"):
        monkeypatch.delenv(name, raising=False)
    assert ci_run_url() is None
    monkeypatch.setenv("GITHUB_SERVER_URL", "https://github.com")
    monkeypatch.setenv("GITHUB_REPOSITORY", "acme/sentiment")
    assert ci_run_url() is None
    monkeypatch.setenv("GITHUB_RUN_ID", "42")
    assert ci_run_url() == "https://github.com/acme/sentiment/actions/runs/42"


def test_the_job_summary_table_has_a_row_per_record_with_escaped_figures(tmp_path):
    store = make_evidence_store(tmp_path)
    passed = evidence(store, "test", subject(10))
    passed = passed.model_copy(update={"checks": [passed.checks[0].model_copy(
        update={"name": "smoke | x"})]})  # fmt: skip
    failed = evidence(store, "dev", subject(11).model_copy(update={"digest": None}), passed=False)
    lines = markdown_table([passed, failed], "Gate evidence").splitlines()
    assert lines[0] == "## Gate evidence"
    assert lines[4] == (
        f"| `{passed.id}` | test | test | `{subject(10).digest[:19]}` | ✅ passed | smoke \\| x |"
    )
    assert f"| dev | dev | `tree {subject(11).source_tree[:14]}` | ❌ failed |" in lines[5]
    assert "(none)" in markdown_table([], "Gate evidence")


LOCUSTFILE_SHA256 = file_sha256(ROOT / "tests" / "load" / "locustfile.py")
CAPACITY = {"users": 8, "run_time_seconds": 20, "max_p99_ms": 100, "min_rps": 400}
MEASURED = {"requests": 36_000, "failures": 0, "failure_ratio": 0.0, "rps": 1800.0,
            "median_ms": 4.0, "p95_ms": 9.0, "p99_ms": 14.0, "max_ms": 40.0}  # fmt: skip


def capacity_run(tmp_path, monkeypatch, measured, baseline=None, **options):
    """The capacity check with locust's figures given, and a baseline of `baseline` rps."""
    monkeypatch.setattr(
        "sentiment_release.gates.checks.capacity.run_locust", lambda *args: {**MEASURED, **measured}
    )
    store = make_evidence_store(tmp_path / "evidence")
    runner = GateRunner(store, Project(ROOT), None, lambda: FIXTURE_DATA)
    check = configure("capacity", {**CAPACITY, **options})
    measured_then = {"rps": baseline, "locustfile_sha256": LOCUSTFILE_SHA256}
    known = (
        Baseline(
            measured_then,
            "test-1",
            "v1.0.0",
            "capacity",
            configure("capacity", CAPACITY).options.model_dump(mode="json"),
        )
        if baseline
        else None
    )
    record = runner.run("test", "test", subject(1), [check], "http://stand-in",
                        baseline=lambda name: known if name == "capacity" else None)  # fmt: skip
    return record.checks[0]


@pytest.mark.parametrize(
    ("measured", "baseline", "failure"),
    [
        ({"rps": 1800.0}, None, None),
        ({"rps": 399.0}, None, "399.0 requests/s is below 400.0 (min_rps 400)"),
        ({"rps": 1800.0}, 2000.0, None),  # 10% below
        (
            {"rps": 1600.0},
            2000.0,
            "1600.0 requests/s is below 1700.0 (2000.0 requests/s of "
            "the current release v1.0.0 less max_drop 15%)",
        ),
        # A slow current release never lowers the bar below min_rps.
        ({"rps": 390.0}, 300.0, "390.0 requests/s is below 400.0 (min_rps 400)"),
        ({"p99_ms": 250.0}, None, "p99 250 ms at 8 clients is above max_p99_ms 100"),
        ({"failures": 3, "failure_ratio": 0.0001}, None, "failure ratio 0.0001 (3 of 36000)"),
        ({"requests": 0}, None, "the capacity test made no request"),
    ],
)
def test_capacity_is_judged_against_the_current_release_or_the_minimum(
    tmp_path, monkeypatch, measured, baseline, failure
):
    result = capacity_run(tmp_path, monkeypatch, measured, baseline)
    if failure is None:
        assert result.result == "passed", result.failures
    else:
        assert result.result == "failed"
        assert any(failure in found for found in result.failures), result.failures
    assert result.figures["required_rps"] == (max(400.0, baseline * 0.85) if baseline else 400.0)
    if baseline:
        assert (result.figures["baseline_rps"], result.figures["baseline_release"]) == (
            baseline, "v1.0.0",
        )  # fmt: skip


def test_capacity_summary_names_the_release_it_was_compared_with():
    figures = {**MEASURED, "baseline_rps": 2000.0, "baseline_release": "v1.0.0"}
    assert CHECKS["capacity"].summary("capacity", figures) == (
        "capacity 1800 rps vs 2000 on v1.0.0, p99 14 ms"
    )
    assert CHECKS["capacity"].summary("capacity", MEASURED) == "capacity 1800 rps, p99 14 ms"


@pytest.mark.parametrize(
    ("options", "why"),
    [({"users": 16}, "measured with other users"),
     ({"run_time_seconds": 60}, "measured with other run_time_seconds")],
)  # fmt: skip
def test_a_baseline_measured_otherwise_is_ignored_and_the_minimum_applies(
    tmp_path, monkeypatch, options, why
):
    result = capacity_run(tmp_path, monkeypatch, {"rps": 1000.0}, 2000.0, **options)
    assert result.result == "passed", result.failures
    assert result.figures["required_rps"] == 400.0
    assert result.figures["baseline_ignored"] == f"test-1: {why}"
    assert "baseline_rps" not in result.figures
