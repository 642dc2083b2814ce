"""GitHub's own rules that act does not emulate, each written down as a test of the
workflows, with the documentation it follows. (act skips the steps these rules are about,
so only this says the workflows keep them.)"""

import re

import yaml

from tests.conftest import ROOT
from tests.unit.test_workflows import all_workflows, load, step_named, steps_of

SETUP = ROOT / ".github" / "actions" / "setup" / "action.yml"


def uses(step: dict, action: str) -> bool:
    return step.get("uses", "").startswith(f"actions/{action}@")


def test_artifact_names_are_per_attempt():
    """An artifact name is unique within a workflow run, across its attempts: uploading a
    name again fails with 409 Conflict, and re-running a failed job re-runs it in the
    same run, while the artifacts of earlier attempts stay.
    https://github.com/actions/upload-artifact#breaking-changes (v4: immutable artifacts)
    https://docs.github.com/en/actions/managing-workflow-runs-and-deployments/managing-workflow-runs/re-running-workflows-and-jobs
    """
    for name, document in all_workflows().items():
        for step in steps_of(document):
            if uses(step, "upload-artifact"):
                assert "github.run_attempt" in step["with"]["name"], (name, step["name"])


def test_an_artifact_is_downloaded_by_the_name_its_uploader_gave():
    """A job re-run alone (publish-state after a failure, the test job after dev passed)
    needs the artifact of the attempt that made it, whose number is not its own: the
    uploading job hands the name on as an output."""
    ci, deploy = load("ci.yml"), load("deploy.yml")
    assert ci["jobs"]["dev"]["outputs"]["evidence-artifact"] == (
        "dev-evidence-${{ github.run_attempt }}"
    )
    assert ci["jobs"]["test"]["with"]["evidence-artifact"] == (
        "${{ needs.dev.outputs.evidence-artifact }}"
    )
    upload = step_named(deploy, "This run's evidence and ledger, for the job that publishes them")
    assert deploy["jobs"]["deploy"]["outputs"]["state-artifact"] == upload["with"]["name"]
    download = next(s for s in deploy["jobs"]["publish-state"]["steps"]
                    if uses(s, "download-artifact"))  # fmt: skip
    assert download["with"]["name"] == "${{ needs.deploy.outputs.state-artifact }}"


def test_the_venv_cache_is_keyed_on_the_exact_interpreter():
    """A virtualenv points at the interpreter it was made with: a runner image that moves
    Python's patch version breaks a venv restored under a key that says only "3.11", and
    every later run would hit that broken cache. setup-python reports the exact version.
    https://github.com/actions/setup-python#outputs
    https://github.com/actions/cache#creating-a-cache-key
    """
    steps = yaml.safe_load(SETUP.read_text())["runs"]["steps"]
    python = next(s for s in steps if s.get("uses", "").startswith("actions/setup-python@"))
    cache = next(s for s in steps if uses(s, "cache"))
    assert f"steps.{python['id']}.outputs.python-version" in cache["with"]["key"]
    assert "runner.arch" in cache["with"]["key"]
    assert not re.search(r"py3\.\d+-", cache["with"]["key"])
    install = next(s for s in steps if "make setup" in s.get("run", ""))
    # A hit is trusted only when its interpreter still runs.
    assert ".venv/bin/python -c" in install["run"]


def test_a_release_verifies_provenance_from_main_on_github_s_runners():
    """`gh attestation verify` accepts provenance from any ref and any runner unless told:
    a release takes only an image main's CI built on GitHub-hosted runners.
    https://cli.github.com/manual/gh_attestation_verify
    """
    verify = step_named(
        load("release.yml"), "The image was built by this repository's CI (its build provenance)"
    )
    assert '--source-ref "refs/heads/main"' in verify["run"]
    assert "--deny-self-hosted-runners" in verify["run"]
