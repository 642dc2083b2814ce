"""`make act`: the pull-request workflow's jobs, run for real on this machine by act.

The workflow YAML is exercised, not only linted: its jobs check out this tree, set up the
virtualenv, lint, test, run the dev gate, build and push the image, and deploy it to dev
through the reusable deploy workflow. GitHub-only steps are skipped under env.ACT.
"""

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from delivery.engine import Engine
from tests.conftest import FIXTURE_DATA, ROOT
from tests.container.conftest import Delivery, _free_ports

PR_JOBS = (
    "lint (ruff, actionlint with shellcheck)",
    "unit tests",
    "integration tests",
    "dev gate, build and push",
)
ANSI = re.compile(r"\x1b\[[0-9;]*m")


@pytest.fixture
def act_env(built: dict, delivery: Delivery, engine: Engine) -> dict[str, str]:
    """The jobs' settings: the session's private registry (already running), their own
    container names and ports, the fixture data with a quality gate it can pass."""
    (dev_port, *others) = _free_ports(4)
    ports = dict(zip(("dev", "test", "stage", "prod"), (dev_port, *others), strict=True))
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("DELIVERY_", "SENTIMENT_", "GITHUB_"))}  # fmt: skip
    env.pop("APP_ENV", None)
    lenient = {"min_accuracy": 0, "min_f1": 0, "min_roc_auc": 0}
    env.update(
        DELIVERY_ENGINE=engine.name,
        DELIVERY_REGISTRY__ADDRESS=delivery.env["DELIVERY_REGISTRY__ADDRESS"],
        DELIVERY_DEPLOY__CONTAINER_PREFIX="sentiment-pytest-act-",
        DELIVERY_DEPLOY__PORTS=json.dumps(ports),
        SENTIMENT_DATA_DIR=str(FIXTURE_DATA),
        SENTIMENT_TRAINING__QUALITY_GATE=json.dumps(lenient),
    )
    base_image = os.environ.get("DELIVERY_BUILD__BASE_IMAGE")
    if base_image:
        env["DELIVERY_BUILD__BASE_IMAGE"] = base_image
    yield env
    subprocess.run([engine.binary, "rm", "--force", "sentiment-pytest-act-dev"],
                   capture_output=True, check=False)  # fmt: skip


def test_the_pull_request_workflow_runs_with_act(act_env: dict[str, str], tmp_path: Path):
    if shutil.which("git") is None:
        pytest.skip("act checks out the repository with git")
    done = subprocess.run(
        ["make", "--no-print-directory", "act"], cwd=ROOT, env=act_env,
        capture_output=True, text=True, timeout=3000, check=False,
    )  # fmt: skip
    log = ANSI.sub("", done.stdout + done.stderr)
    (tmp_path / "act.log").write_text(log)
    assert done.returncode == 0, f"{log[-6000:]}\n(whole log: {tmp_path / 'act.log'})"

    for job in PR_JOBS:
        assert re.search(rf"\[CI/{re.escape(job)}\s*\] 🏁  Job succeeded", log), job
    assert "[dev/Deploy and gate/deploy dev] 🏁  Job succeeded" in log  # deploy.yml
    # The promotions run on main only: a pull request never reaches test or stage.
    assert "Job succeeded" not in "".join(
        line for line in log.splitlines() if re.match(r"\[CI/(test|stage)\s*\]", line)
    )
    # The steps that only make sense on GitHub were skipped, the rest ran for real.
    assert "Success - Main Dev gate (lint, unit tests, quality gate) writes evidence" in log
    assert "dev gate PASSED" in log
    pushed = re.search(r"image\s+(127\.0\.0\.1:\d+/sentiment-api@sha256:[0-9a-f]{64})", log)
    assert pushed, "the dev job pushed no image"
    # deploy.yml ran the very digest the dev job pushed (its output `image`).
    assert re.search(rf"dev: http://127\.0\.0\.1:\d+ ready in .*image {re.escape(pushed[1])}", log)
    assert "deploy target: local" in log
    assert "Run Main GHCR settings and login" not in log  # GitHub-only: skipped under act
