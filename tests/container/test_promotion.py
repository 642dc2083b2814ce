"""Gates, promotion and rollback for real: containers, locust, evidence, the ledger.

The session's image goes through the gates; variants built FROM it stand for what goes
wrong: a model file tampered with after the build, a bug that shows only in prod. The
policy is the repository's, its gates fitted to the fixture model (conftest.py).
"""

import shutil
import subprocess
import uuid

import pytest

from sentiment_release.delivery import labels
from tests.conftest import ROOT
from tests.container.conftest import head_commit, status, variant

pytestmark = pytest.mark.container

# In prod only, the batch limit drops to 1, so prod's smoke check of a batch fails.
PROD_ONLY_BUG = """\
COPY --chmod=755 prod-only-bug /usr/local/bin/prod-only-bug
ENTRYPOINT ["/usr/local/bin/prod-only-bug"]
CMD ["sentiment-serve"]
"""
PROD_ONLY_BUG_SCRIPT = """\
#!/bin/sh
[ "$APP_ENV" = prod ] && export SENTIMENT_SERVICE__MAX_BATCH_SIZE=1
exec "$@"
"""
# A release that got slower: every scoring call first burns 1 ms of CPU, the GIL held (a
# regression in the scorer, say). Loaded by the image's Python at start (a .pth line).
SLOWED = """\
COPY slowdown.py slowdown.pth /opt/venv/lib/python3.11/site-packages/
"""
SLOWDOWN = """\
import time

from sentiment.model import scoring

scores = scoring.Scorer.scores


def slower(self, texts):
    end = time.perf_counter() + 0.001
    while time.perf_counter() < end:
        pass
    return scores(self, texts)


scoring.Scorer.scores = slower
"""
TAMPERED_MODEL = """\
USER root
RUN for model in /app/models/versions/*/model.joblib; do printf x >> "$model"; done
USER 10001:10001
"""


def test_promotion_without_evidence_is_refused_and_changes_nothing(delivery, built):
    def running():
        return {name: (row["state"], row["image"]) for name, row in status(delivery).items()}

    before = running()
    for target, missing in (("test", "no dev gate evidence"), ("stage", "no test gate evidence"),
                            ("prod", "no stage gate evidence")):  # fmt: skip
        done = delivery.run("promote", "--to", target, "--image", built[0].digest, check=False)
        assert done.returncode == 1, done.stdout
        assert missing in done.stderr
        assert delivery.ledger(target) == []
    assert running() == before


def test_the_dev_gate_vouches_for_the_tree_and_model_the_image_was_built_from(delivery, built):
    delivery.run("gate", "dev")
    [record] = delivery.evidence("dev")
    assert record.passed, record.failures
    assert record.subject.source_tree == built[0].source_tree
    assert record.subject.model_sha256 == built[0].model.sha256
    assert [(check.name, check.check) for check in record.checks] == [
        ("quality", "quality"), ("unit", "pytest"),
    ]  # fmt: skip
    assert record.checks[1].figures["passed"] > 0
    assert (delivery.state_dir / "evidence" / record.checks[1].reports[1]).exists()


def test_an_impossible_load_threshold_fails_the_test_gate_and_stage_refuses(delivery, built):
    impossible = delivery.policy("impossible-load", test={"load": {
        "users": 2, "spawn_rate": 2, "run_time_seconds": 3, "max_failure_ratio": 0,
        "max_p95_ms": 2000, "max_p99_ms": 5000, "min_rps": 100000}})  # fmt: skip
    done = delivery.run("promote", "--to", "test", "--image", built[0].digest, check=False,
                        SENTIMENT_POLICY_FILE=impossible)  # fmt: skip
    assert done.returncode == 1
    assert "is below min_rps 100000" in done.stderr
    [entry] = delivery.ledger("test")
    assert entry.result == "failed"
    record = delivery.evidence("test")[-1]
    assert record.checks[0].options["min_rps"] == 100000  # the threshold it was held to
    reports = delivery.state_dir / "evidence" / record.reports_dir
    assert (reports / "load.html").exists()
    assert (reports / "load_stats.csv").exists()
    assert "GATE FAILED" in status(delivery)["test"]["release"]
    refused = delivery.run("promote", "--to", "stage", "--image", built[0].digest, check=False)
    assert refused.returncode == 1
    assert "the latest test gate" in refused.stderr
    assert delivery.ledger("stage") == []


def test_the_image_passes_test_and_stage_and_the_evidence_says_so(delivery, built):
    delivery.run("promote", "--to", "test", "--image", built[0].digest)
    delivery.run("promote", "--to", "stage", "--image", built[0].digest)
    test_record, stage_record = delivery.evidence("test")[-1], delivery.evidence("stage")[-1]
    for record in (test_record, stage_record):
        assert record.passed, record.failures
        assert record.subject.digest == built[0].digest
        assert record.subject.model_sha256 == built[0].model.sha256
        assert len(record.config_sha256) == 64
        assert record.started_at < record.finished_at
    checks = {check.name: check for check in test_record.checks + stage_record.checks}
    assert set(checks) == {"integration", "load", "smoke", "uat", "skew", "latency"}
    assert checks["integration"].figures["passed"] > 0
    assert checks["load"].figures["requests"] > 0
    assert checks["skew"].figures["max_score_difference"] <= 1e-9
    assert checks["skew"].figures["reviews"] > 0
    # Stage asks for API keys: every stage check called it with the gates' own key, and
    # the smoke suite saw a call without one refused (none of its tests skipped).
    assert checks["smoke"].figures["skipped"] == 0
    assert checks["smoke"].figures["passed"] == checks["smoke"].figures["tests"]
    [stage_entry] = delivery.ledger("stage")
    assert stage_entry.relied_on == [test_record.id]
    assert stage_entry.evidence == stage_record.id


def test_a_model_tampered_after_the_build_fails_the_test_gate(engine, delivery, built):
    tampered = variant(engine, delivery, built[0], "tampered", TAMPERED_MODEL)
    done = delivery.run("promote", "--to", "test", "--image", tampered, check=False)
    assert done.returncode == 1
    assert "deploy: container" in done.stderr
    refused = delivery.run("promote", "--to", "stage", "--image", tampered, check=False)
    assert refused.returncode == 1
    assert "no test gate evidence" in refused.stderr or "the latest test gate" in refused.stderr


@pytest.fixture(scope="module")
def release():
    """A release tag on HEAD, and a release branch holding HEAD (the checkout may be on
    any branch), both removed afterwards."""
    name = f"pytest-{uuid.uuid4().hex[:8]}"
    tag, branch = f"v0.0.0-{name}", f"release-{name}"
    for kind, ref in (("tag", tag), ("branch", branch)):
        subprocess.run(["git", "-C", str(ROOT), kind, ref, "HEAD"], check=True)
    yield tag, branch
    for kind, ref in (("tag", tag), ("branch", branch)):
        subprocess.run(["git", "-C", str(ROOT), kind, "--delete", ref], capture_output=True)


# The variants below claim HEAD as their commit: prod takes only a tagged commit, and the
# working tree these tests run from may have changes. The full test and stage gates ran on
# the session image: here the test gate is a capacity check alone, and prod is next.
CAPACITY = {"users": 8, "run_time_seconds": 3, "max_p99_ms": 2000, "min_rps": 20}


@pytest.fixture(scope="module")
def in_prod(engine, delivery, built, release):
    """An image released to prod through a test gate that measured its capacity: the
    image, its release tag, and the policies (dev-test-prod; dev-prod) to go on with."""
    release_tag, release_branch = release
    good = variant(engine, delivery, built[0], "good", "", **{labels.REVISION: head_commit()})
    settings = {"release_branch": release_branch}
    policies = {
        "capacity": {"SENTIMENT_POLICY_FILE": delivery.policy(
            "capacity", only=["dev", "test", "prod"], settings=settings,
            test={"capacity": CAPACITY})},
        "straight": {"SENTIMENT_POLICY_FILE": delivery.policy(
            "straight", only=["dev", "prod"], settings=settings)},
    }  # fmt: skip
    delivery.run("gate", "dev", **policies["capacity"])  # the variants' tree and model
    delivery.run("promote", "--to", "test", "--image", good, **policies["capacity"])
    released = delivery.run("promote", "--to", "prod", "--image", good, "--release-tag",
                            release_tag, **policies["capacity"])  # fmt: skip
    return good, release_tag, policies, released


def test_a_failed_prod_smoke_rolls_back_to_the_previous_release(engine, delivery, built,
                                                                 in_prod):  # fmt: skip
    good, release_tag, policies, released = in_prod
    # The release has its name in the registry, on the very digest released.
    if shutil.which("skopeo") is None:
        assert "NOT TAGGED IN THE REGISTRY: skopeo is not installed" in released.stderr
    else:
        assert f"registry tag: {good.split('@')[0]}:{release_tag}" in released.stdout
        found = subprocess.run(
            ["skopeo", "inspect", "--tls-verify=false", "--format", "{{.Digest}}",
             f"docker://{good.split('@')[0]}:{release_tag}"],
            check=True, capture_output=True, text=True,
        ).stdout.strip()  # fmt: skip
        assert found == good.split("@")[1]

    # Straight from the dev gate: what is tested is prod's own gate and what it sets off.
    commit = {labels.REVISION: head_commit()}
    bad = variant(engine, delivery, built[0], "prod-only-bug", PROD_ONLY_BUG,
                  {"prod-only-bug": PROD_ONLY_BUG_SCRIPT}, **commit)  # fmt: skip
    straight = policies["straight"]
    # Its own tag, named: the checkout's HEAD may carry others (`make pipeline` tags it).
    done = delivery.run("promote", "--to", "prod", "--image", bad, "--release-tag", release_tag,
                        check=False, **straight)  # fmt: skip
    assert done.returncode == 1
    assert "automatic rollback" in done.stdout
    entries = delivery.ledger("prod")
    assert [(e.event, e.result, e.image) for e in entries] == [
        ("promote", "released", good),
        ("promote", "failed", bad),
        ("rollback", "released", good),
    ]
    assert entries[2].automatic is True
    assert entries[1].release_tag == release_tag
    assert delivery.evidence("rollback")[-1].passed
    prod = status(delivery)["prod"]
    assert (prod["image"], prod["health"]) == (good, "ready")
    assert "rollback*" in delivery.run("history", "prod", **straight).stdout

    # A manual rollback has nothing earlier than the first release to go back to.
    nothing = delivery.run("rollback", "prod", check=False, **straight)
    assert nothing.returncode == 1
    assert "no earlier release" in nothing.stderr


def test_a_slowed_image_fails_the_capacity_check_against_the_release_in_prod(
    engine, delivery, built, in_prod
):
    good, release_tag, policies, _ = in_prod
    slowed = variant(engine, delivery, built[0], "slowed", SLOWED,
                     {"slowdown.py": SLOWDOWN, "slowdown.pth": "import slowdown\n"},
                     **{labels.REVISION: head_commit()})  # fmt: skip
    [good_test] = [r for r in delivery.evidence("test") if r.subject.image == good]
    done = delivery.run("promote", "--to", "test", "--image", slowed, check=False,
                        **policies["capacity"])  # fmt: skip
    assert done.returncode == 1, done.stdout
    [slowed_test] = [r for r in delivery.evidence("test") if r.subject.image == slowed]
    [check] = slowed_test.checks
    assert check.result == "failed"
    assert check.figures["baseline_evidence"] == good_test.id
    assert check.figures["baseline_release"] == release_tag
    assert check.figures["rps"] < 0.85 * good_test.checks[0].figures["rps"]
    assert f"of the current release {release_tag} less max_drop 15%" in check.failures[0]
    assert any(report.endswith("capacity.html") for report in check.reports)
