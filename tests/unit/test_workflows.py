"""The GitHub Actions workflows: linted, their scripts run here, and their environments
kept in step with the promotion policy, so that adding an environment to the policy
without its jobs, or the other way round, fails here rather than on GitHub."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from sentiment_release.github.act import STAND_INS, event_payload
from sentiment_release.promotion.policy import load_policy
from tests.conftest import CONFIG_DIR, ROOT

WORKFLOWS = ROOT / ".github" / "workflows"
BIN = Path(sys.executable).parent
PINNED = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_./-]+@[0-9a-f]{40}$")
DEPLOY = "./.github/workflows/deploy.yml"
POLICY = load_policy(ROOT / "config" / "promotion.yaml")


def load(name: str) -> dict:
    document = yaml.safe_load((WORKFLOWS / name).read_text())
    document["on"] = document.pop(True)  # YAML 1.1 reads the key `on` as true
    return document


def all_workflows() -> dict[str, dict]:
    return {path.name: load(path.name) for path in sorted(WORKFLOWS.glob("*.yml"))}


def steps_of(document: dict) -> list[dict]:
    return [step for job in document["jobs"].values() for step in job.get("steps", [])]


def all_steps() -> list[dict]:
    steps = [step for document in all_workflows().values() for step in steps_of(document)]
    for path in sorted((ROOT / ".github" / "actions").glob("*/action.yml")):
        steps += yaml.safe_load(path.read_text())["runs"]["steps"]
    return steps


def step_named(document: dict, name: str) -> dict:
    return next(step for step in steps_of(document) if step.get("name") == name)


def actionlint(*paths: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "actionlint"), "-no-color", "-shellcheck", str(BIN / "shellcheck"),
         *map(str, paths)],
        capture_output=True, text=True, check=False, cwd=ROOT,
    )  # fmt: skip


def test_every_workflow_passes_actionlint_and_shellcheck():
    done = actionlint(*sorted(WORKFLOWS.glob("*.yml")))
    assert done.returncode == 0, done.stdout + done.stderr


def test_actionlint_runs_shellcheck_on_run_steps(tmp_path):
    """The lint can fail: an unquoted variable in a run: step is reported by shellcheck."""
    broken = tmp_path / ".github" / "workflows" / "broken.yml"
    broken.parent.mkdir(parents=True)
    broken.write_text(
        "on: push\npermissions: {}\njobs:\n  a:\n    runs-on: ubuntu-latest\n"
        "    steps:\n      - run: rm -rf $TARGET/*\n"
    )
    done = actionlint(broken)
    assert done.returncode == 1
    assert "SC2086" in done.stdout


# In step with the policy.


def promotion_chain(ci: dict) -> list[str]:
    """The environments ci.yml promotes to, following `needs` from the dev deploy."""
    jobs = ci["jobs"]
    promoting = {
        job_id: job for job_id, job in jobs.items()
        if job.get("uses") == DEPLOY and job["with"]["operation"] == "promote"
    }  # fmt: skip
    chain, previous = [], "deploy-dev"
    while True:
        following = [j for j, job in promoting.items() if previous in _needs(job)]
        if not following:
            return chain
        assert len(following) == 1, f"{previous} is followed by {following}"
        previous = following[0]
        chain.append(promoting[previous]["with"]["environment"])


def _needs(job: dict) -> list[str]:
    needs = job.get("needs", [])
    return [needs] if isinstance(needs, str) else needs


def test_main_is_promoted_through_the_policy_environments_in_order():
    ci = load("ci.yml")
    assert promotion_chain(ci) == [environment.name for environment in POLICY.promoted_on_merge]
    for job in ci["jobs"].values():
        if job.get("uses") == DEPLOY and job["with"]["operation"] == "promote":
            # The digest the build job pushed, never a rebuild; on main only.
            assert job["with"]["image"] == "${{ needs.build.outputs.image }}"
            assert "build" in _needs(job)
            assert "github.event_name == 'push'" in job["if"]
    deploy_dev = ci["jobs"]["deploy-dev"]["with"]
    assert (deploy_dev["environment"], deploy_dev["operation"]) == (POLICY.first.name, "deploy")


def test_rollback_offers_exactly_the_environments_promoted_to():
    options = load("rollback.yml")["on"]["workflow_dispatch"]["inputs"]["environment"]["options"]
    assert options == [environment.name for environment in POLICY.promoted]


def test_the_load_test_offers_the_promoted_environments_and_the_profiles():
    from sentiment_release.loadtest.profiles import load_loadtest_config

    inputs = load("loadtest.yml")["on"]["workflow_dispatch"]["inputs"]
    assert inputs["environment"]["options"] == [e.name for e in POLICY.promoted]
    assert inputs["profile"]["options"] == list(load_loadtest_config(CONFIG_DIR).profiles)
    assert inputs["confirm"]["default"] == ""


def test_the_load_test_runs_the_make_verb_in_the_environment_the_policy_names():
    workflow = load("loadtest.yml")
    jobs = workflow["jobs"]
    assert jobs["loadtest"]["environment"]["name"] == "${{ needs.plan.outputs.github-environment }}"
    assert "environment" not in jobs["plan"]
    assert jobs["loadtest"]["concurrency"]["cancel-in-progress"] is False
    step = step_named(workflow, "Load test")
    assert step["run"] == ('make loadtest ENV="$ENV" PROFILE="$PROFILE" URL="$SERVICE_URL" '
                           'CONFIRM="$CONFIRM"')  # fmt: skip
    assert jobs["loadtest"]["env"]["CONFIRM"] == "${{ inputs.confirm }}"


def test_the_load_test_summary_reaches_the_job_summary(tmp_path):
    step = step_named(load("loadtest.yml"), "The summary table")
    run = tmp_path / ".delivery" / "loadtests" / "stage" / "20261128T000000000000Z-spike"
    run.mkdir(parents=True)
    (run / "summary.md").write_text("| figure | this run |\n")
    done = run_script(step, {}, tmp_path, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "GITHUB_STEP_SUMMARY").read_text() == "| figure | this run |\n"
    empty = tmp_path / "empty"
    empty.mkdir()
    assert run_script(step, {}, tmp_path, cwd=empty).returncode == 0  # no run: nothing added


def test_a_release_tag_goes_where_the_policy_sends_it():
    release = load("release.yml")
    assert release["on"] == {"push": {"tags": [POLICY.release_tag_pattern]}}
    job = release["jobs"]["release"]
    assert job["uses"] == DEPLOY
    assert job["with"]["environment"] == "${{ needs.candidate.outputs.environment }}"
    assert job["with"]["release-tag"] == "${{ github.ref_name }}"


def test_every_deploy_runs_in_the_github_environment_the_policy_names():
    jobs = load("deploy.yml")["jobs"]
    assert jobs["deploy"]["needs"] == "plan"
    assert jobs["deploy"]["environment"]["name"] == "${{ needs.plan.outputs.github-environment }}"
    assert "environment" not in jobs["plan"]  # the plan itself holds no secret


def run_script(
    step: dict, env: dict[str, str], tmp_path: Path, cwd: Path = ROOT
) -> subprocess.CompletedProcess:
    """A run: step's script executed by bash here, as the runner would, with its env."""
    files = {name: tmp_path / name for name in ("GITHUB_ENV", "GITHUB_OUTPUT",
                                                "GITHUB_STEP_SUMMARY")}  # fmt: skip
    for path in files.values():
        path.write_text("")
    return subprocess.run(
        ["bash", "-e", "-c", step["run"]], cwd=cwd, capture_output=True, text=True, check=False,
        env={**os.environ, "RUNNER_TEMP": str(tmp_path), **{k: str(v) for k, v in files.items()},
             **env},
    )  # fmt: skip


@pytest.mark.parametrize(
    ("environment", "expected"),
    [(e.name, e.github_environment) for e in POLICY.environments],
)
def test_the_plan_step_reads_the_github_environment_from_the_policy(
    tmp_path, environment, expected
):
    step = step_named(load("deploy.yml"), "The GitHub environment the policy gives this one")
    done = run_script(step, {"ENV": environment}, tmp_path)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "GITHUB_OUTPUT").read_text() == f"github-environment={expected}\n"


def test_the_plan_step_refuses_an_environment_the_policy_lacks(tmp_path):
    step = step_named(load("deploy.yml"), "The GitHub environment the policy gives this one")
    done = run_script(step, {"ENV": "qa; echo pwned"}, tmp_path)
    assert done.returncode != 0
    assert f"is not one of {', '.join(POLICY.names)}" in done.stderr
    assert (tmp_path / "GITHUB_OUTPUT").read_text() == ""


@pytest.mark.parametrize("kubeconfig", ["", "apiVersion: v1\nkind: Config\n"])
def test_the_deploy_target_follows_the_kubeconfig_secret(tmp_path, kubeconfig):
    step = step_named(load("deploy.yml"), "Choose the deploy target")
    done = run_script(step, {"KUBECONFIG_DATA": kubeconfig, "ENV": "stage"}, tmp_path)
    assert done.returncode == 0, done.stderr
    exported = dict(
        line.split("=", 1) for line in (tmp_path / "GITHUB_ENV").read_text().splitlines()
    )
    if kubeconfig:
        assert exported["DELIVERY_DEPLOY__TARGET"] == "kubernetes"
        written = Path(exported["KUBECONFIG"])
        assert written.read_text() == kubeconfig + "\n"
        assert written.stat().st_mode & 0o077 == 0  # the secret is readable by its owner only
    else:
        assert exported == {"DELIVERY_DEPLOY__TARGET": "local"}
    assert "::notice title=Deploy target (stage)::" in done.stdout


# What every workflow keeps.


def test_every_action_is_pinned_to_a_full_commit_sha():
    for step in all_steps():
        uses = step.get("uses")
        if uses and not uses.startswith("./"):
            assert PINNED.match(uses), f"{uses} is not pinned to a 40-hex commit"


def test_github_only_actions_are_skipped_under_act_or_stood_in_for():
    """act cannot fetch remote actions here (make act): their steps are skipped under act,
    but for GitHub's artifact store, which .github/act/ stands in for (its rules kept)."""
    for step in all_steps():
        uses = step.get("uses", "")
        if not uses or uses.startswith(("./", "actions/checkout@")):
            continue
        if uses.split("@")[0] in STAND_INS:
            assert "ACT" not in str(step.get("if", "")), f"{uses} is stood in for under act"
            assert (
                ROOT / ".github" / "act" / STAND_INS[uses.split("@")[0]] / "action.yml"
            ).is_file()
        else:
            assert "!env.ACT" in str(step.get("if")), f"{uses} would run under act"


def test_permissions_are_least_privilege():
    for name, document in all_workflows().items():
        if "workflow_call" in document["on"]:
            # Reusable: each job narrows what the caller grants; only publish-state writes.
            assert "permissions" not in document
            for job_id, job in document["jobs"].items():
                writes = {scope for scope, level in job["permissions"].items() if level == "write"}
                assert writes == ({"contents"} if job_id == "publish-state" else set()), job_id
            continue
        assert document["permissions"] == {}, f"{name}: default must be no permissions"
        for job_id, job in document["jobs"].items():
            granted = job.get("permissions")
            assert isinstance(granted, dict), f"{name}/{job_id} must declare its permissions"
            assert set(granted.values()) <= {"read", "write"}
            writes = {scope for scope, level in granted.items() if level == "write"}
            if writes == {"contents"}:
                # Only deploy.yml's publish-state job pushes the delivery-state branch.
                assert job.get("uses") == DEPLOY
            elif writes == {"packages"}:
                assert (name, job_id) in {("ci.yml", "pull-request-build"), ("release.yml", "tag")}
            elif writes == {"packages", "id-token", "attestations"}:
                assert (name, job_id) == ("ci.yml", "build"), "only main's build attests"
            elif writes == {"contents", "pull-requests", "packages"}:
                # Pushes an accepted challenger and opens the pull request that pins it.
                assert (name, job_id) == ("retrain.yml", "publish")
            else:
                assert not writes, f"{name}/{job_id} writes {writes}"


def test_deployments_go_through_one_job_that_never_overlaps_itself():
    # Its queue is its callers' (test_github_rules.py): one inside would deadlock with it.
    assert all("concurrency" not in job for job in load("deploy.yml")["jobs"].values())
    for name, document in all_workflows().items():
        for step in steps_of(document):
            if re.search(r"make (promote|rollback)\b", step.get("run", "")):
                assert name == "deploy.yml", f"{name} promotes outside deploy.yml"
    # A pull request runs its image only in a container of its own job.
    run = step_named(load("ci.yml"), "Run the image in a container of this job")
    assert run["env"]["DELIVERY_DEPLOY__TARGET"] == "local"


def test_pull_requests_touch_no_environment_and_no_secret():
    jobs = load("ci.yml")["jobs"]
    assert jobs["pull-request"]["if"] == "github.event_name == 'pull_request'"
    assert _needs(jobs["pull-request-build"]) == ["pull-request"]
    assert _needs(jobs["pull-request-smoke"]) == ["pull-request-build"]
    for job_id in ("pull-request", "pull-request-build", "pull-request-smoke"):
        assert "environment" not in jobs[job_id]
        assert "secrets." not in yaml.safe_dump(jobs[job_id])
    # Everything that uses an environment runs on pushes to main only: it, or a job it
    # needs (directly or not), says so.
    for job_id, job in jobs.items():
        if "environment" in job or job.get("uses") == DEPLOY:
            chain, seen = [job_id], set()
            while chain:
                seen.add(current := chain.pop())
                chain += [n for n in _needs(jobs[current]) if n not in seen]
            assert any(jobs[n].get("if") == "github.event_name == 'push'" for n in seen), job_id


def test_no_checkout_keeps_a_token_and_only_the_state_steps_get_one():
    checkouts = [s for s in all_steps() if s.get("uses", "").startswith("actions/checkout@")]
    assert checkouts
    assert all(step["with"]["persist-credentials"] is False for step in checkouts)
    read_only = {
        "docker login ghcr.io",  # a packages token, for docker (held as the next tests say)
        # The same token for one step that pulls the pinned model (no test runs in it).
        "The pinned champion, pulled by digest (trained only while none is pinned)",
        # Reads the champion; the job may read packages only.
        "Train, compare, keep the challenger only if it is better and not worse",
        "The image was built by this repository's CI (its build provenance)",  # gh, reading
    }
    given = [
        step
        for step in all_steps()
        if "github.token" in str(step.get("env", {})) and step.get("name") not in read_only
    ]
    assert given
    for step in given:
        if step.get("name") == "Open a pull request that moves the pin":
            # Its git push goes through with-git-token.sh too, after the registry logout.
            assert step["run"] == 'bash scripts/open-pin-pull-request.sh "$VERSION"'
            continue
        assert step["run"].startswith("bash scripts/with-git-token.sh make state-"), step


def test_the_git_token_reaches_git_through_its_environment_only(tmp_path):
    """scripts/with-git-token.sh: git sees the header, .git/config never holds it."""
    git = lambda *args: subprocess.run(["git", "-C", str(tmp_path), *args],  # noqa: E731
                                       capture_output=True, text=True, check=True)  # fmt: skip
    git("init", "-q")
    shown = subprocess.run(
        ["bash", str(ROOT / "scripts" / "with-git-token.sh"), "git", "-C", str(tmp_path),
         "config", "--get", "http.https://github.com/.extraheader"],
        env={**os.environ, "GIT_TOKEN": "secret-token"}, capture_output=True, text=True,
        check=True,
    )  # fmt: skip
    assert shown.stdout.splitlines()[-1].startswith("AUTHORIZATION: basic ")
    assert "secret-token" not in (tmp_path / ".git" / "config").read_text()


SIGN_STEP = re.compile(
    r"""printf '%s\\n' "\$EVIDENCE_SIGNING_KEY" \| \.venv/bin/sentiment sign (dev|"\$ENV")"""
    r"""( --check --key-file -| --key-file - --batch "\$UNSIGNED")"""
)
RUNS_CHECKS = re.compile(r"make (gate|promote|rollback)\b|sentiment rollback\b")


def test_a_failed_gate_is_rolled_back_only_after_its_evidence_is_signed():
    deploy = load("deploy.yml")["jobs"]["deploy"]
    after = step_named(
        load("deploy.yml"), "Roll back after a failed gate, where the policy says so"
    )
    assert "steps.sign.outcome == 'success'" in after["if"]
    assert "steps.promote.outputs.gate == 'failed'" in after["if"]
    assert after["run"] == '.venv/bin/sentiment rollback "$ENV" --if-gate-failed'
    names = [step.get("name") for step in deploy["steps"]]
    assert names.index("Sign what the gate left") < names.index(after["name"])


def test_the_signing_secret_reaches_only_the_signing_steps_after_the_checks():
    """On GitHub, a step's env is all a secret reaches: the steps that run lint, tests and
    locust (make gate, promote, rollback) never have it; the ones that do run nothing but
    `sentiment sign`, fed the key on standard input, and in a job of an environment (the
    only ones with its secrets) one of them follows every step that runs checks."""
    found = 0
    for name, document in all_workflows().items():
        assert "EVIDENCE_SIGNING_KEY" not in str(document.get("env", {})), name
        for job_id, job in document["jobs"].items():
            assert "EVIDENCE_SIGNING_KEY" not in str(job.get("env", {})), (name, job_id)
            signing_after = False
            for step in reversed(job.get("steps", [])):
                holds_key = "secrets.EVIDENCE_SIGNING_KEY" in str(step.get("env", {}))
                run = step.get("run", "")
                if holds_key:
                    found += 1
                    assert SIGN_STEP.fullmatch(run.strip()), (name, job_id, step)
                    assert set(step["env"]) <= {"EVIDENCE_SIGNING_KEY", "UNSIGNED"}, step
                    if "--check" not in run:
                        # Signs even after a failed or cancelled check step (a failure is
                        # evidence), only what that step said it wrote.
                        assert step["if"].startswith("${{ always() &&"), (name, step)
                        assert "outputs.unsigned" in step["env"]["UNSIGNED"], (name, step)
                        signing_after = True
                else:
                    assert "EVIDENCE_SIGNING_KEY" not in run, (name, step)
                if RUNS_CHECKS.search(run) and "environment" in job:
                    assert signing_after, f"{name}/{job_id}: no signing step after {run!r}"
    text = "\n".join(path.read_text() for path in WORKFLOWS.glob("*.yml"))
    assert text.count("secrets.EVIDENCE_SIGNING_KEY") == found == 5


def test_api_key_secrets_are_only_installed_and_every_deploy_job_installs_them():
    """The deploy job writes the environment's key hashes and gate key from its secrets
    before anything deploys or gates; no workflow makes keys (`api-keys gate|create`)."""
    text = "\n".join(path.read_text() for path in WORKFLOWS.glob("*.yml"))
    assert not re.search(r"api-keys (gate|create|rotate)|make api-keys", text)
    deploy = all_workflows()["deploy.yml"]["jobs"]["deploy"]
    runs = [step.get("run", "") for step in deploy["steps"]]
    install = next(i for i, run in enumerate(runs) if "api-keys install" in run)
    first_make = next(i for i, run in enumerate(runs) if re.search(r"make (deploy|promote)", run))
    assert install < first_make, runs
    env = deploy["steps"][install]["env"]
    assert env == {"API_KEY_HASHES": "${{ secrets.API_KEY_HASHES }}",
                   "GATE_API_KEY": "${{ secrets.GATE_API_KEY }}"}  # fmt: skip
    for name, document in all_workflows().items():
        for step in steps_of(document):
            if "API_KEY" in str(step.get("env", {})):
                assert "api-keys install" in step["run"], (name, step)


def test_secrets_come_only_from_environments():
    for name, document in all_workflows().items():
        for job_id, job in document["jobs"].items():
            if "secrets." in yaml.safe_dump(job):
                assert "environment" in job, f"{name}/{job_id} reads secrets without one"


def test_every_make_target_the_workflows_call_exists():
    makefile = (ROOT / "Makefile").read_text()
    targets = set(re.findall(r"^([a-z][a-z-]*):", makefile, re.MULTILINE))
    runs = [step.get("run", "") for step in all_steps()]
    called = {target for run in runs for target in re.findall(r"\bmake ([a-z][a-z-]*)", run)}
    assert called
    assert called <= targets, called - targets


def test_the_act_event_is_a_same_repository_pull_request():
    """make act plays a pull request from this repository, so the build job runs."""
    name, workflow, event = event_payload("pull_request", "main", None)
    assert (name, workflow) == ("pull_request", "ci.yml")
    assert event["pull_request"]["head"]["repo"]["fork"] is False


def test_evidence_artifacts_include_the_dot_directory():
    """upload-artifact leaves out hidden files unless told: .delivery/ would upload empty."""
    uploads = [s for s in all_steps() if s.get("uses", "").startswith("actions/upload-artifact@")]
    evidence = [step for step in uploads if step["with"]["path"].startswith(".delivery")]
    assert len(evidence) == 4
    assert all(step["with"].get("include-hidden-files") is True for step in evidence)


def test_main_s_image_carries_build_provenance_that_the_release_verifies():
    build = load("ci.yml")["jobs"]["build"]
    assert _needs(build) == ["dev"]
    attest = next(s for s in build["steps"] if s.get("uses", "").startswith(
        "actions/attest-build-provenance@"))  # fmt: skip
    assert attest["with"]["subject-digest"] == "${{ steps.build.outputs.digest }}"
    assert attest["with"]["push-to-registry"] is True
    candidate = load("release.yml")["jobs"]["candidate"]
    names = [step.get("name") for step in candidate["steps"]]
    verify = candidate["steps"][names.index(
        "The image was built by this repository's CI (its build provenance)")]  # fmt: skip
    assert "gh attestation verify" in verify["run"]
    assert "--signer-workflow" in verify["run"]
    assert names.index("The image was built by this repository's CI (its build provenance)") > (
        names.index("The tagged commit's image with passing evidence, and where a release goes")
    )
    assert load("release.yml")["jobs"]["release"]["needs"] == "candidate"


def test_only_the_publish_state_job_holds_a_write_token_and_it_runs_no_tests():
    jobs = load("deploy.yml")["jobs"]
    publish = jobs["publish-state"]
    runs = [step.get("run", "") for step in publish["steps"]]
    assert [run for run in runs if run] == ["bash scripts/with-git-token.sh make state-push"]
    assert "state-push" not in yaml.safe_dump(jobs["deploy"])
    download = next(s for s in publish["steps"] if s.get("name") == (
        "The deploy job's evidence and ledger"))  # fmt: skip
    assert download["with"]["name"] == "${{ needs.deploy.outputs.state-artifact }}"
    # (that the name is the uploaded one: test_github_rules.py)


def test_the_venv_cache_is_keyed_on_everything_make_setup_reads():
    steps = yaml.safe_load((ROOT / ".github" / "actions" / "setup" / "action.yml").read_text())
    cache = next(
        s for s in steps["runs"]["steps"] if s.get("uses", "").startswith("actions/cache@")
    )
    prerequisites = re.search(r"^\$\(VENV\)/\.installed: (.*)$", (ROOT / "Makefile").read_text(),
                              re.MULTILINE)[1].split()  # fmt: skip
    assert prerequisites
    for path in prerequisites:
        assert f"'{path}'" in cache["with"]["key"], f"{path} is not in the cache key"
    assert cache["with"]["path"] == ".venv"


LOGIN = "./.github/actions/registry-login"
LOGOUT = "docker logout ghcr.io"
# What runs tests, lint, training or a gate's checks (third-party code: pytest plugins,
# locust, scikit-learn): never while a registry write token, or any write token, is held.
TESTS = re.compile(
    r"make (gate|smoke|model|train|unit|integration|container|test|lint|promote|rollback"
    r"|pipeline|loadtest|bench|workflows|act)\b|sentiment (gate|promote|rollback|loadtest"
    r"|smoke|bench|pipeline|train)\b|\bpytest\b|\bruff\b|\blocust\b"
)


def test_a_registry_write_token_is_held_only_around_a_push_or_a_tag():
    setup = (ROOT / ".github" / "actions" / "setup" / "action.yml").read_text()
    assert "docker login" not in setup
    jobs = [(f"{name}/{job_id}", job) for name, document in all_workflows().items()
            for job_id, job in document["jobs"].items()]  # fmt: skip
    writers = [(where, job) for where, job in jobs
               if job.get("permissions", {}).get("packages") == "write"]  # fmt: skip
    assert {where for where, _ in writers} == {
        "ci.yml/build",
        "ci.yml/pull-request-build",
        "release.yml/tag",
        "retrain.yml/publish",
    }
    for where, job in writers:
        steps = job["steps"]
        logins = [i for i, step in enumerate(steps) if step.get("uses") == LOGIN]
        logouts = [i for i, step in enumerate(steps) if step.get("run") == LOGOUT]
        assert len(logins) == len(logouts) == 1, where
        login, logout = logins[0], logouts[0]
        assert login < logout, where
        assert steps[logout]["if"] == "${{ always() && !env.ACT }}", where
        held = steps[login:logout]
        pushes = r"make (build|tag-release)\b|sentiment models push\b"
        assert any(re.search(pushes, s.get("run", "")) for s in held)
        for step in held:
            assert not TESTS.search(step.get("run", "")), f"{where}: {step.get('name')}"


def test_every_job_that_touches_images_logs_in_first():
    for name, document in all_workflows().items():
        for job_id, job in document["jobs"].items():
            steps = job.get("steps", [])
            touches = [i for i, s in enumerate(steps)
                       if re.search(r"make (build|deploy|promote|rollback|tag-release)\b",
                                    s.get("run", ""))]  # fmt: skip
            if touches:
                logins = [i for i, s in enumerate(steps) if s.get("uses") == LOGIN]
                assert logins, f"{name}/{job_id}"
                assert logins[0] < touches[0], f"{name}/{job_id}"


# A newer commit supersedes an older one; nothing is lost without a word.


def test_every_commit_on_main_runs_to_its_own_end_and_its_deploys_queue():
    ci = load("ci.yml")
    group = ci["concurrency"]["group"]
    assert group == "ci-${{ github.event_name == 'pull_request' && github.ref || github.sha }}"
    assert ci["concurrency"]["cancel-in-progress"] == "${{ github.event_name == 'pull_request' }}"
    deploy = load("deploy.yml")
    assert deploy["on"]["workflow_call"]["outputs"]["superseded"]["value"] == (
        "${{ jobs.deploy.outputs.superseded }}"
    )
    job = deploy["jobs"]["deploy"]
    assert job["outputs"]["superseded"] == "${{ steps.order.outputs.superseded }}"
    order = next(i for i, step in enumerate(job["steps"]) if step.get("id") == "order")
    for i, step in enumerate(job["steps"]):
        if re.search(r"make (deploy|promote)\b", step.get("run", "")):
            assert i > order
            assert "steps.order.outputs.superseded != 'true'" in step["if"], step["name"]
    # A promotion that follows a superseded one does not run for that image.
    jobs = ci["jobs"]
    for job_id, caller in jobs.items():
        if caller.get("uses") == DEPLOY and caller["with"]["operation"] == "promote":
            before = next(n for n in _needs(caller) if jobs[n].get("uses") == DEPLOY)
            assert f"needs.{before}.outputs.superseded != 'true'" in caller["if"], job_id


@pytest.fixture
def fake_cli(tmp_path):
    """A checkout whose `.venv/bin/sentiment superseded` answers as told, logging its args."""
    checkout = tmp_path / "checkout"
    (checkout / ".venv" / "bin").mkdir(parents=True)
    cli = checkout / ".venv" / "bin" / "sentiment"

    def answering(answer: str) -> Path:
        cli.write_text(f'#!/bin/sh\nprintf "%s\\n" "$@" > "{tmp_path}/args"\necho {answer}\n')
        cli.chmod(0o755)
        return checkout

    return answering


@pytest.mark.parametrize("answer", ["true", "false"])
def test_the_order_step_passes_the_image_as_one_argument_and_says_when_it_stops(
    tmp_path, fake_cli, answer
):
    step = step_named(load("deploy.yml"), "Is a newer commit already in ${{ inputs.environment }}?")
    image = f"127.0.0.1:5000/x@sha256:{'a' * 64}; touch pwned"
    done = run_script(step, {"ENV": "test", "IMAGE": image}, tmp_path, cwd=fake_cli(answer))
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "args").read_text().splitlines() == ["superseded", "test", "--image", image]
    assert (tmp_path / "GITHUB_OUTPUT").read_text() == f"superseded={answer}\n"
    summary = (tmp_path / "GITHUB_STEP_SUMMARY").read_text()
    assert ("**Superseded in test**" in summary) == (answer == "true")
    assert not (tmp_path / "checkout" / "pwned").exists()


def test_the_outcome_job_shows_a_commit_a_newer_one_overtook_as_superseded(tmp_path):
    step = step_named(load("ci.yml"), "Each environment's outcome for this commit")
    needs = {
        "dev": {"result": "success", "outputs": {"image": "x"}},
        "deploy-dev": {"result": "success", "outputs": {"superseded": "false"}},
        "test": {"result": "success", "outputs": {"superseded": "true"}},
        "stage": {"result": "skipped", "outputs": {}},
    }
    done = run_script(step, {"NEEDS": json.dumps(needs), "GITHUB_SHA": "ab" * 20}, tmp_path)
    assert done.returncode == 0, done.stderr
    rows = (tmp_path / "GITHUB_STEP_SUMMARY").read_text().splitlines()
    assert rows[0] == f"## Where commit {'ab' * 6} went"
    assert rows[3:] == [
        "| dev | success |",
        "| test | superseded: a newer commit was already there |",
        "| stage | not reached |",
    ]
    needs["test"] = {"result": "cancelled", "outputs": {}}
    done = run_script(step, {"NEEDS": json.dumps(needs), "GITHUB_SHA": "ab" * 20}, tmp_path)
    assert (
        "| test | cancelled: another run took its place in the deploy queue"
        in (tmp_path / "GITHUB_STEP_SUMMARY").read_text()
    )
    chain = promotion_chain(load("ci.yml"))
    assert load("ci.yml")["jobs"]["outcome"]["needs"] == ["dev", "build", "deploy-dev", *chain]


@pytest.mark.parametrize("version", ["", "latest", "20261128T000000Z-abcdef12; rm -rf /"])
def test_the_pin_pull_request_takes_only_a_model_version(tmp_path, version):
    done = subprocess.run(["bash", str(ROOT / "scripts" / "open-pin-pull-request.sh"), version],
                          cwd=tmp_path, capture_output=True, text=True, check=False)  # fmt: skip
    assert done.returncode == 1
    assert "not a model version" in done.stderr


def test_the_pin_pull_request_needs_a_moved_pin(tmp_path):
    git = lambda *args: subprocess.run(["git", "-C", str(tmp_path), *args],  # noqa: E731
                                       capture_output=True, text=True, check=True)  # fmt: skip
    git("init", "-q")
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "champion.yaml").write_text("digest: null\nversion: null\n")
    git("add", ".")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "init")
    done = subprocess.run(
        ["bash", str(ROOT / "scripts" / "open-pin-pull-request.sh"), "20261128T000000Z-abcdef12"],
        cwd=tmp_path, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 1
    assert "unchanged: nothing to propose" in done.stderr
    assert git("branch", "--show-current").stdout.strip() in ("master", "main")
