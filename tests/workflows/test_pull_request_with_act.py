"""`make act`: the pull-request workflow's jobs, run for real on this machine by act.

The workflow YAML is exercised, not only linted: its jobs check out this tree, set up the
virtualenv, lint, test, run the dev gate, build and push the image, and run it in a
container of the job to smoke-test it; no environment is deployed to (that is main's).
GitHub-only steps are skipped under env.ACT. This takes minutes: `make workflows` runs it
(and .ci/run), not `make test`.
"""

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from sentiment_release.delivery.champion import read_pin
from tests.conftest import ROOT
from tests.container.conftest import FITTED_CHECKS
from tests.workflows.conftest import ANSI, act_engine, act_environment, clean_up

PR_JOBS = (
    "lint (ruff, import contracts, policy, actionlint)",
    "integration tests",
    "dev gate (pull request)",
    "build and push (pull request)",
    "smoke (pull request)",
)
PREFIX = "sentiment-pytest-act-"


@pytest.fixture
def act_env(tmp_path):
    """The jobs' settings: a private registry, their own container names and ports, the
    fixture data, gates the fixture model can pass, and a pinned champion."""
    engine = act_engine()
    if shutil.which("git") is None:
        pytest.skip("act checks out the repository with git")
    env = act_environment(tmp_path, engine, PREFIX, FITTED_CHECKS)
    yield env
    clean_up(env, engine, PREFIX)


def test_the_pull_request_workflow_runs_with_act(act_env: dict[str, str], tmp_path: Path):
    done = subprocess.run(
        ["make", "--no-print-directory", "act"], cwd=ROOT, env=act_env,
        capture_output=True, text=True, timeout=3000, check=False,
    )  # fmt: skip
    log = ANSI.sub("", done.stdout + done.stderr)
    (tmp_path / "act.log").write_text(log)
    assert done.returncode == 0, f"{log[-6000:]}\n(whole log: {tmp_path / 'act.log'})"

    for job in PR_JOBS:
        assert re.search(rf"\[CI/{re.escape(job)}\s*\] 🏁  Job succeeded", log), job
    # Environments are main's: a pull request deploys to none, not even dev.
    assert "Job succeeded" not in "".join(
        line
        for line in log.splitlines()
        if re.match(r"\[(CI/(test|stage|dev gate|build and push)\s*\]|dev/Deploy and gate)", line)
    )
    # The steps that only make sense on GitHub were skipped, the rest ran for real.
    pin = read_pin(Path(act_env["SENTIMENT_CHAMPION_FILE"]))
    assert f"champion {pin.digest}" in log, "the jobs did not pull the pinned model"
    assert "dev gate PASSED" in log
    pushed = re.search(r"image\s+(127\.0\.0\.1:\d+/sentiment-api@sha256:[0-9a-f]{64})", log)
    assert pushed, "the dev job pushed no image"
    # The job ran the very digest it pushed, in its own container, and smoke-tested it.
    assert re.search(rf"dev: http://127\.0\.0\.1:\d+ ready in .*image {re.escape(pushed[1])}", log)
    assert "deploy target: local" in log
    assert re.search(r"\b6 passed\b", log), "the smoke tests did not pass"
    # GitHub's settings applied (config/github-actions.env): only committed keys count, so
    # the gate's evidence stays unsigned (no environment, no secret), as on GitHub.
    assert "GHCR settings (config/github-actions.env)" in log
    assert "this machine's keys do not count here (config/trust.yaml local_keys: false)" in log
