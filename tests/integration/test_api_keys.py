"""API keys on a real gunicorn server: refused, accepted, rotated, counted across workers,
never logged; and the gates presenting their own key to every check that calls the API."""

from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from sentiment.model import ModelFolder
from sentiment_release.delivery.api_keys import ApiKeyStore
from sentiment_release.gates.checks import configure
from sentiment_release.gates.runner import GateRunner
from sentiment_release.support.project import Project
from tests.conftest import FIXTURE_DATA, FIXTURE_UAT, ROOT, make_evidence_store
from tests.integration.test_gate_checks import subject_of

pytestmark = pytest.mark.integration

REVIEW = {"review": "Lovely staff, great food."}


@pytest.fixture
def keys(tmp_path) -> ApiKeyStore:
    store = ApiKeyStore(tmp_path / "api-keys")
    store.ensure_gate_key("stage")
    return store


@pytest.fixture
def served(own_server, trained_registry, tmp_path, keys):
    settings = {
        "SENTIMENT_AUTH__REQUIRED": "true",
        "SENTIMENT_AUTH__KEY_HASHES_FILE": str(keys.hashes_file("stage")),
        # The gates' key as the operator's: it sees the traffic by key id.
        "SENTIMENT_AUTH__OPERATOR_KEYS": '["gate"]',
    }
    return own_server(tmp_path / "server", trained_registry, workers=2, settings=settings)


def post(url: str, headers: dict[str, str]) -> requests.Response:
    return requests.post(f"{url}/predict/", json=REVIEW, headers=headers, timeout=10)


def test_keys_are_checked_rotated_counted_and_never_logged(served, keys, tmp_path):
    """The hash file is read at start, so the rotated key is made before the server."""
    url = served.base_url
    gate_key = keys.gate_key("stage")
    assert post(url, {}).status_code == 401
    assert post(url, {"Authorization": f"Bearer {gate_key[:-1]}x"}).status_code == 401
    assert post(url, {"X-API-Key": gate_key}).status_code == 200
    assert requests.get(f"{url}/readyz", timeout=10).status_code == 200
    assert requests.get(f"{url}/metrics", timeout=10).status_code == 401

    with ThreadPoolExecutor(8) as pool:  # across both workers
        codes = list(pool.map(lambda _: post(url, {"X-API-Key": gate_key}).status_code, range(40)))
    assert codes == [200] * 40
    metrics = requests.get(f"{url}/metrics", headers={"X-API-Key": gate_key}, timeout=10).text
    counted = {
        sample.labels["key_id"]: sample.value
        for family in text_string_to_metric_families(metrics)
        if family.name == "sentiment_api_key_requests"
        for sample in family.samples
        if sample.name.endswith("_total")
    }
    assert counted == {"gate": 42.0}  # 41 predictions and this /metrics call, let in first

    logs = served.logs()
    assert '"key_id": "gate"' in logs
    assert gate_key not in logs
    assert gate_key[-43:] not in logs


def test_both_keys_of_a_rotation_are_valid(own_server, trained_registry, tmp_path):
    store = ApiKeyStore(tmp_path / "api-keys")
    old = store.create("prod", "acme")
    new = store.rotate("prod", "acme")
    settings = {
        "SENTIMENT_AUTH__REQUIRED": "true",
        "SENTIMENT_AUTH__KEY_HASHES_FILE": str(store.hashes_file("prod")),
    }
    server = own_server(tmp_path / "server", trained_registry, workers=1, settings=settings)
    assert post(server.base_url, {"X-API-Key": old}).status_code == 200
    assert post(server.base_url, {"X-API-Key": new}).status_code == 200


def gate(tmp_path, trained_registry, url, checks, api_key):
    """A gate run in an environment whose service asks for keys (stage's config)."""
    bundle = ModelFolder(trained_registry).load("current", "scikit-learn")
    runner = GateRunner(make_evidence_store(tmp_path / "evidence"), Project(ROOT), None,
                        lambda: FIXTURE_DATA, lambda environment: api_key)  # fmt: skip
    configured = [configure(name, entry) for name, entry in checks.items()]
    record = runner.run("stage", "stage", subject_of(bundle), configured, url, lambda: bundle)
    return {check.name: check for check in record.checks}


CHECKS = {
    # The smoke suite as a plain suite: the server runs with test's config, not stage's.
    "smoke": {
        "check": "pytest",
        "needs_service": True,
        "args": ["tests/smoke", "--expected-environment", "test"],
    },
    "uat": {
        "check": "pytest",
        "needs_service": True,
        "args": ["tests/uat", "--uat-expectations", str(FIXTURE_UAT)],
    },
    "skew": {"max_score_difference": 1e-9},
    "latency": {"requests": 20, "max_p95_ms": 1000, "max_ms": 5000},
    "load": {
        "users": 2,
        "spawn_rate": 2,
        "run_time_seconds": 3,
        "max_failure_ratio": 0.0,
        "max_p95_ms": 5000,
        "max_p99_ms": 5000,
        "min_rps": 1,
    },
}


# The container tests run the stage gate (smoke, UAT, skew, latency) against a stage
# container that asks for keys; locust's runs and the failures are shown here.
CALLING = ("load", "latency")


def test_every_check_that_calls_the_api_presents_the_gate_key(
    served, keys, trained_registry, tmp_path
):
    checks = {name: CHECKS[name] for name in CALLING}
    results = gate(tmp_path / "a", trained_registry, served.base_url, checks,
                   keys.gate_key("stage"))  # fmt: skip
    assert {name: r.result for name, r in results.items()} == dict.fromkeys(checks, "passed"), {
        name: r.failures for name, r in results.items()
    }
    assert results["load"].figures["failures"] == 0
    gate_key = keys.gate_key("stage")
    for path in (tmp_path / "a" / "evidence").rglob("*"):
        if path.is_file():
            assert gate_key not in path.read_text(errors="replace"), path


def test_without_its_key_the_gate_fails_every_such_check_saying_why(
    served, trained_registry, tmp_path
):
    results = gate(tmp_path, trained_registry, served.base_url, CHECKS, None)
    for name, result in results.items():
        assert result.result == "failed", name
        assert "stage requires API keys and the gate has none" in result.failures[0]


def test_with_a_wrong_key_the_checks_fail(served, trained_registry, tmp_path):
    wrong = "snt_gate_" + "A" * 43
    checks = {name: CHECKS[name] for name in ("skew", "latency")}
    results = gate(tmp_path, trained_registry, served.base_url, checks, wrong)
    assert {name: r.result for name, r in results.items()} == dict.fromkeys(checks, "failed")
    assert "401" in results["latency"].failures[0]
