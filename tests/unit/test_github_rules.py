"""GitHub's own rules that act does not emulate, each written down as a test of the
workflows, with the documentation it follows. (act skips the steps these rules are about,
so only this says the workflows keep them.)"""

import re

import yaml

from tests.conftest import ROOT
from tests.unit.test_workflows import (
    TESTS,
    all_steps,
    all_workflows,
    load,
    step_named,
    steps_of,
)

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


ARTIFACT_OUTPUT = re.compile(
    r"\$\{\{ steps\.(?P<step>[\w-]+)\.outputs\.artifact-id"
    r" && format\('(?P<template>[^']*)', (?P<args>[^)]*)\) \|\| '' \}\}"
)


def uploaded_name(job: dict, output: str) -> str:
    """The artifact name a job's output hands on: the name its upload step gave, and only
    once that step uploaded (empty when it made none, so nothing downloads a missing one)."""
    found = ARTIFACT_OUTPUT.fullmatch(job["outputs"][output])
    assert found, job["outputs"][output]
    upload = next(step for step in job["steps"] if step.get("id") == found["step"])
    assert uses(upload, "upload-artifact")
    name = found["template"]
    for i, argument in enumerate(found["args"].split(", ")):
        name = name.replace(f"{{{i}}}", f"${{{{ {argument} }}}}")
    assert name == upload["with"]["name"]
    return name


def test_an_artifact_is_downloaded_by_the_name_its_uploader_gave():
    """A job re-run alone (publish-state after a failure, the test job after dev passed)
    needs the artifact of the attempt that made it, whose number is not its own: the
    uploading job hands the name on as an output. A job that made none hands on nothing:
    publish-state does not run to fail on a missing artifact (a deploy cancelled early).
    https://docs.github.com/en/actions/writing-workflows/choosing-what-your-workflow-does/passing-information-between-jobs
    """
    ci, deploy = load("ci.yml"), load("deploy.yml")
    assert uploaded_name(ci["jobs"]["dev"], "evidence-artifact") == (
        "dev-evidence-${{ github.run_attempt }}"
    )
    assert ci["jobs"]["test"]["with"]["evidence-artifact"] == (
        "${{ needs.dev.outputs.evidence-artifact }}"
    )
    uploaded_name(deploy["jobs"]["deploy"], "state-artifact")
    publish = deploy["jobs"]["publish-state"]
    download = next(s for s in publish["steps"] if uses(s, "download-artifact"))
    assert download["with"]["name"] == "${{ needs.deploy.outputs.state-artifact }}"
    assert publish["if"] == "${{ always() && needs.deploy.outputs.state-artifact != '' }}"
    retrain = load("retrain.yml")
    assert uploaded_name(retrain["jobs"]["challenger"], "artifact")


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


def reads_secrets(job: dict) -> bool:
    return "secrets." in yaml.safe_dump(job)


def callers() -> list[tuple[str, str, dict]]:
    """Every job that calls a workflow of this repository, with the workflow it calls."""
    return [(name, job_id, job) for name, document in all_workflows().items()
            for job_id, job in document["jobs"].items()
            if job.get("uses", "").startswith("./.github/workflows/")]  # fmt: skip


def test_a_called_workflow_gets_its_environment_s_secrets_only_when_the_caller_inherits():
    """In a called workflow, the secrets context holds only what the caller passes: a job
    there that declares `environment:` does not get that environment's secrets unless its
    caller says `secrets: inherit` (they resolve to empty strings otherwise).
    https://docs.github.com/en/actions/sharing-automations/reusing-workflows#passing-inputs-and-secrets-to-a-reusable-workflow
    https://github.com/actions/runner/issues/1490
    """
    found = callers()
    assert found
    for name, job_id, job in found:
        called = load(job["uses"].removeprefix("./.github/workflows/"))
        readers = [j for j in called["jobs"].values() if reads_secrets(j)]
        assert readers, f"{name}/{job_id} calls a workflow that reads no secret"
        assert job.get("secrets") == "inherit", f"{name}/{job_id} passes its callee no secret"
        # ... and what reads them there is a job of an environment (not the repository's).
        assert all("environment" in j for j in readers)


def test_one_queue_per_environment_holds_every_job_that_writes_its_state():
    """A concurrency group runs one job or workflow call at a time and keeps one pending.
    Set on the job that calls deploy.yml, it holds the whole call: the deploy job and
    publish-state, so the next run pulls the state branch after this one pushed it. The
    same group inside the called workflow would deadlock with the caller's, so it has none.
    https://docs.github.com/en/actions/writing-workflows/choosing-what-your-workflow-does/control-the-concurrency-of-workflows-and-jobs
    https://docs.github.com/en/actions/sharing-automations/reusing-workflows#supported-keywords-for-jobs-that-call-a-reusable-workflow
    """
    deploy = load("deploy.yml")
    assert not any("concurrency" in job for job in deploy["jobs"].values())
    assert "concurrency" not in deploy
    for name, job_id, job in callers():
        expected = {"group": f"deploy-{job['with']['environment']}", "cancel-in-progress": False}
        assert job.get("concurrency") == expected, f"{name}/{job_id}"
    # The registry tag of a release queues on its own: in the deploy queue, a pending tag
    # job and a pending rollback would cancel each other (one pending per group).
    release = load("release.yml")["jobs"]
    assert release["tag"]["concurrency"] == {
        "group": "release-tag-${{ needs.candidate.outputs.environment }}",
        "cancel-in-progress": False,
    }
    groups = [job.get("concurrency", {}).get("group", "") for document in all_workflows().values()
              for job in document["jobs"].values()]  # fmt: skip
    assert not [g for g in groups if g.startswith("deploy-") and g not in {
        f"deploy-{caller['with']['environment']}" for _, _, caller in callers()}]  # fmt: skip
    assert release["release"]["with"]["environment"] == "${{ needs.candidate.outputs.environment }}"
    # Only publish-state pushes the state branch.
    for name, document in all_workflows().items():
        for job_id, job in document["jobs"].items():
            if "make state-push" in yaml.safe_dump(job):
                assert (name, job_id) == ("deploy.yml", "publish-state")


WRITES = {"contents", "packages", "id-token", "attestations", "pull-requests", "deployments",
          "actions", "checks", "issues", "statuses", "security-events"}  # fmt: skip


def test_no_job_that_runs_tests_can_write_or_mint_an_identity_token():
    """A job's token carries its permissions for all of its steps (and the runner's memory);
    `id-token: write` gives every step ACTIONS_ID_TOKEN_REQUEST_TOKEN, enough to sign as
    this repository's CI. So each job asks for its own permissions, the workflow for none,
    and a job that runs tests may only read: building, pushing, attesting and publishing
    state are jobs of their own.
    https://docs.github.com/en/actions/writing-workflows/choosing-what-your-workflow-does/controlling-permissions-for-github_token
    https://docs.github.com/en/actions/security-for-github-actions/security-hardening-your-deployments/about-security-hardening-with-openid-connect#adding-permissions-settings
    """
    for name, document in all_workflows().items():
        if "workflow_call" not in document["on"]:
            assert document["permissions"] == {}, name
        for job_id, job in document["jobs"].items():
            granted = job.get("permissions")
            assert isinstance(granted, dict), f"{name}/{job_id} must declare its permissions"
            writes = {scope for scope, level in granted.items() if level == "write"}
            assert writes <= WRITES
            runs = [step.get("run", "") for step in job.get("steps", [])]
            if any(TESTS.search(run) for run in runs):
                assert not writes, f"{name}/{job_id} runs tests with {writes}"


# What act may skip: calls to GitHub-only services (artifacts, caches, attestations, GHCR,
# the gh CLI) and the runner's provisioning (its Python, its packages), nothing else.
GITHUB_ONLY_RUNS = re.compile(
    r"((echo \"\$REGISTRY_TOKEN\" \| )?docker (login|logout) ghcr\.io\b.*|gh attestation verify .*"
    r"|sudo apt-get update -qq\nsudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "
    r"bubblewrap\nsudo sysctl -w kernel\.apparmor_restrict_unprivileged_userns=0\n"
    r"|echo \"::notice title=Build provenance::.*)",
    re.DOTALL,
)


def test_act_skips_only_steps_that_call_github_only_services():
    """act runs GitHub's logic: a step that sets configuration or chooses behaviour runs
    under act too; only calls to GitHub's own services are skipped, each a step of its
    own. (make act then applies config/github-actions.env as GitHub's runners do.)"""
    skipped = [step for step in all_steps() if "env.ACT" in str(step.get("if", ""))]
    assert skipped
    for step in skipped:
        used = step.get("uses", "")
        if used:
            assert not used.startswith("./"), step  # a remote action: GitHub's
        else:
            assert GITHUB_ONLY_RUNS.fullmatch(step["run"]), step
    settings = next(step for step in yaml.safe_load(SETUP.read_text())["runs"]["steps"]
                    if "config/github-actions.env" in step.get("run", ""))  # fmt: skip
    assert "ACT" not in str(settings.get("if", "")) + settings["run"]


def test_the_build_takes_the_model_the_dev_gate_checked():
    """Jobs run on fresh runners: while no champion is pinned, a build that trained again
    would ship another model than the one the dev gate passed (and no later gate would
    find its evidence). The dev job hands its model on as an artifact."""
    jobs = load("ci.yml")["jobs"]
    assert uploaded_name(jobs["dev"], "model-artifact") == "dev-model-${{ github.run_attempt }}"
    steps = jobs["build"]["steps"]
    download = next(i for i, s in enumerate(steps) if uses(s, "download-artifact"))
    assert steps[download]["with"] == {"name": "${{ needs.dev.outputs.model-artifact }}",
                                       "path": "models"}  # fmt: skip
    build = next(i for i, s in enumerate(steps) if "make build" in s.get("run", ""))
    assert download < build
