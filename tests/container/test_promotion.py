"""Gates, promotion and rollback for real: containers, locust, evidence, the ledger.

The session's image goes through the gates; variants built FROM it stand for what goes
wrong: a model file tampered with after the build, a bug that shows only in prod. The
image serves the model trained on the fixture data, so SENTIMENT_GATE__* shrink the
gates' runs and fit their thresholds to it; what they check is unchanged.
"""

import json
import subprocess
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import FIXTURE_DATA, LENIENT_GATE, ROOT, env_name

# Whole sections: a single nested key would leave the section half-set in environments
# whose files do not define it (dev has no load test), which the settings refuse.
LOAD_TEST = {
    "users": 2, "spawn_rate": 2, "run_time_seconds": 4,
    "max_failure_ratio": 0, "max_p95_ms": 2000, "max_p99_ms": 5000, "min_rps": 1,
}  # fmt: skip
GATE_ENV = {
    "SENTIMENT_DATA_DIR": str(FIXTURE_DATA),
    **{env_name(key): str(value) for key, value in LENIENT_GATE.items()},
    "SENTIMENT_GATE__LINT": "[]",
    "SENTIMENT_GATE__UNIT_TESTS": '["tests/unit/test_settings.py"]',
    "SENTIMENT_GATE__INTEGRATION_TESTS": '["tests/integration/test_http_api.py"]',
    "SENTIMENT_GATE__LOAD_TEST": json.dumps(LOAD_TEST),
    "SENTIMENT_GATE__UAT_TESTS": json.dumps(
        ["tests/uat", "--uat-expectations", str(FIXTURE_DATA.parent / "uat" / "expectations.yaml")]
    ),
    "SENTIMENT_GATE__LATENCY": json.dumps({"requests": 20, "max_p95_ms": 1000, "max_ms": 5000}),
}
# In prod only, the batch limit drops to 1, so prod's smoke check of a batch fails.
PROD_ONLY_BUG = """\
COPY --chmod=755 prod-only-bug /usr/local/bin/prod-only-bug
ENTRYPOINT ["/usr/local/bin/prod-only-bug"]
CMD ["sentiment", "serve"]
"""
PROD_ONLY_BUG_SCRIPT = """\
#!/bin/sh
[ "$APP_ENV" = prod ] && export SENTIMENT_SERVICE__MAX_BATCH_SIZE=1
exec "$@"
"""
TAMPERED_MODEL = """\
USER root
RUN for model in /app/models/versions/*/model.joblib; do printf x >> "$model"; done
USER 10001:10001
"""


def head_commit() -> str:
    return subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True, check=True
    ).stdout.strip()


def variant(engine, delivery, built, tmp_path: Path, name: str, steps: str, **labels) -> str:
    """An image FROM the session's image plus `steps`, pushed; its digest."""
    lines = [f"FROM {built['tag']}", steps]
    lines += [f'LABEL {key}="{value}"' for key, value in labels.items()]
    context = tmp_path / name
    context.mkdir()
    (context / "Dockerfile").write_text("\n".join(lines) + "\n")
    (context / "prod-only-bug").write_text(PROD_ONLY_BUG_SCRIPT)
    tag = f"{delivery.env['DELIVERY_REGISTRY__ADDRESS']}/sentiment-api:pytest-{name}"
    engine.build(context, tag, {})
    return engine.push(tag, context / "digest")


def run(delivery, *args: str, check: bool = True, **env: str) -> subprocess.CompletedProcess:
    return delivery.run(*args, check=check, **{**GATE_ENV, **env})


def evidence(delivery) -> list[dict[str, Any]]:
    directory = delivery.state_dir / "evidence"
    return [json.loads(path.read_text()) for path in sorted(directory.glob("*.json"))]


def ledger(delivery, environment: str) -> list[dict[str, Any]]:
    path = delivery.state_dir / "ledger" / f"{environment}.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_promotion_without_evidence_is_refused_and_changes_nothing(delivery, built):
    def running():
        rows = json.loads(run(delivery, "status", "--json").stdout)
        return {row["environment"]: (row["state"], row["image"]) for row in rows}

    before = running()
    for target, missing in (("test", "no dev gate evidence"), ("stage", "no test gate evidence"),
                            ("prod", "no stage gate evidence")):  # fmt: skip
        done = run(delivery, "promote", "--to", target, "--image", built["digest"], check=False)
        assert done.returncode == 1, done.stdout
        assert missing in done.stderr
        assert ledger(delivery, target) == []
    assert running() == before


def test_the_dev_gate_vouches_for_the_tree_and_model_the_image_was_built_from(delivery, built):
    run(delivery, "gate", "dev")
    [record] = [r for r in evidence(delivery) if r["gate"] == "dev"]
    assert record["result"] == "passed"
    assert record["subject"]["source_tree"] == built["source_tree"]
    assert record["subject"]["model_sha256"] == built["model"]["sha256"]
    assert [check["name"] for check in record["checks"]] == ["quality", "unit"]
    assert record["checks"][1]["figures"]["passed"] > 0
    assert (delivery.state_dir / "evidence" / record["checks"][1]["reports"][1]).exists()


def test_an_impossible_load_threshold_fails_the_test_gate_and_stage_refuses(delivery, built):
    done = run(delivery, "promote", "--to", "test", "--image", built["digest"], check=False,
               SENTIMENT_GATE__LOAD_TEST=json.dumps({**LOAD_TEST, "min_rps": 100000}))  # fmt: skip
    assert done.returncode == 1
    assert "is below min_rps 100000" in done.stderr
    [entry] = ledger(delivery, "test")
    assert entry["result"] == "failed"
    record = [r for r in evidence(delivery) if r["gate"] == "test"][-1]
    reports = delivery.state_dir / "evidence" / record["reports_dir"]
    assert (reports / "locust.html").exists()
    assert (reports / "locust_stats.csv").exists()
    status = {
        row["environment"]: row for row in json.loads(run(delivery, "status", "--json").stdout)
    }
    assert "GATE FAILED" in status["test"]["release"]
    refused = run(delivery, "promote", "--to", "stage", "--image", built["digest"], check=False)
    assert refused.returncode == 1
    assert "the latest test gate" in refused.stderr
    assert ledger(delivery, "stage") == []


def test_the_image_passes_test_and_stage_and_the_evidence_says_so(delivery, built):
    run(delivery, "promote", "--to", "test", "--image", built["digest"])
    run(delivery, "promote", "--to", "stage", "--image", built["digest"])
    test_record = [r for r in evidence(delivery) if r["gate"] == "test"][-1]
    stage_record = [r for r in evidence(delivery) if r["gate"] == "stage"][-1]
    for record in (test_record, stage_record):
        assert record["result"] == "passed", record["failures"]
        assert record["subject"]["digest"] == built["digest"]
        assert record["subject"]["model_sha256"] == built["model"]["sha256"]
        assert len(record["config_sha256"]) == 64
        assert record["started_at"] < record["finished_at"]
    checks = {check["name"]: check for check in test_record["checks"] + stage_record["checks"]}
    assert set(checks) == {"integration", "load", "smoke", "uat", "skew", "latency"}
    assert checks["integration"]["figures"]["passed"] > 0
    assert checks["load"]["figures"]["requests"] > 0
    assert checks["skew"]["figures"]["max_score_difference"] <= 1e-9
    assert checks["skew"]["figures"]["reviews"] > 0
    [stage_entry] = ledger(delivery, "stage")
    assert stage_entry["relied_on"] == [test_record["id"]]
    assert stage_entry["evidence"] == stage_record["id"]


def test_a_model_tampered_after_the_build_fails_the_test_gate(engine, delivery, built, tmp_path):
    digest = variant(engine, delivery, built, tmp_path, "tampered", TAMPERED_MODEL)
    done = run(delivery, "promote", "--to", "test", "--image", digest, check=False)
    assert done.returncode == 1
    assert "deploy: container" in done.stderr
    refused = run(delivery, "promote", "--to", "stage", "--image", digest, check=False)
    assert refused.returncode == 1
    assert "the latest test gate" in refused.stderr
    # stage still runs the image that passed.
    assert ledger(delivery, "stage")[-1]["digest"] == built["digest"]


@pytest.fixture
def release_tag():
    """A release tag on HEAD for the test's images, removed afterwards."""
    tag = f"v0.0.0-pytest.{uuid.uuid4().hex[:8]}"
    subprocess.run(["git", "-C", str(ROOT), "tag", tag, "HEAD"], check=True)
    yield tag
    subprocess.run(["git", "-C", str(ROOT), "tag", "--delete", tag], capture_output=True)


def test_a_failed_prod_smoke_rolls_back_to_the_previous_release(
    engine, delivery, built, tmp_path, release_tag
):
    # Both images claim HEAD as their commit: prod takes only a tagged commit, and the
    # working tree these tests run from may have changes.
    commit = {"org.opencontainers.image.revision": head_commit()}
    good = variant(engine, delivery, built, tmp_path, "good", "", **commit)
    bad = variant(engine, delivery, built, tmp_path, "prod-only-bug", PROD_ONLY_BUG, **commit)
    for digest in (good, bad):
        for target in ("test", "stage"):
            run(delivery, "promote", "--to", target, "--image", digest)
    run(delivery, "promote", "--to", "prod", "--image", good, "--release-tag", release_tag)

    done = run(delivery, "promote", "--to", "prod", "--image", bad, check=False)
    assert done.returncode == 1
    assert "automatic rollback" in done.stdout
    entries = ledger(delivery, "prod")
    assert [(e["event"], e["result"], e["digest"]) for e in entries] == [
        ("promote", "released", good),
        ("promote", "failed", bad),
        ("rollback", "released", good),
    ]
    assert entries[2]["automatic"] is True
    assert entries[1]["release_tag"] == release_tag
    status = {
        row["environment"]: row for row in json.loads(run(delivery, "status", "--json").stdout)
    }
    assert status["prod"]["image"].endswith(good)
    assert status["prod"]["health"] == "ready"
    history = run(delivery, "history", "prod").stdout
    assert "rollback*" in history

    # A manual rollback has nothing earlier than the first release to go back to.
    nothing = run(delivery, "rollback", "prod", check=False)
    assert nothing.returncode == 1
    assert "no earlier release" in nothing.stderr
