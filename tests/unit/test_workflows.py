"""The GitHub Actions workflows: actionlint (with shellcheck) and the delivery rules they
must keep, read from the YAML itself."""

import json
import re
import subprocess
import sys
from pathlib import Path

import yaml

from delivery.config import load_delivery_settings

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = ROOT / ".github" / "workflows"
BIN = Path(sys.executable).parent
PINNED = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_./-]+@[0-9a-f]{40}$")
DEPLOY = "./.github/workflows/deploy.yml"


def load(name: str) -> dict:
    document = yaml.safe_load((WORKFLOWS / name).read_text())
    document["on"] = document.pop(True)  # YAML 1.1 reads the key `on` as true
    return document


def all_workflows() -> dict[str, dict]:
    return {path.name: load(path.name) for path in sorted(WORKFLOWS.glob("*.yml"))}


def steps_of(document: dict) -> list[dict]:
    return [step for job in document["jobs"].values() for step in job.get("steps", [])]


def action_files() -> list[Path]:
    return sorted((ROOT / ".github" / "actions").glob("*/action.yml"))


def all_steps() -> list[dict]:
    steps = [step for document in all_workflows().values() for step in steps_of(document)]
    for path in action_files():
        steps += yaml.safe_load(path.read_text())["runs"]["steps"]
    return steps


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
    assert "shellcheck reported issue" in done.stdout
    assert "SC2086" in done.stdout


def test_the_workflows_are_the_expected_set():
    assert set(all_workflows()) == {
        "ci.yml", "deploy.yml", "release.yml", "rollback.yml", "retrain.yml",
    }  # fmt: skip


def test_every_action_is_pinned_to_a_full_commit_sha():
    for step in all_steps():
        uses = step.get("uses")
        if uses and not uses.startswith("./"):
            assert PINNED.match(uses), f"{uses} is not pinned to a 40-hex commit"


def test_github_only_actions_are_skipped_under_act():
    """act stands in for remote actions (make act); their steps must not run there."""
    for step in all_steps():
        uses = step.get("uses", "")
        if uses and not uses.startswith(("./", "actions/checkout@")):
            assert "!env.ACT" in str(step.get("if")), f"{uses} would run under act"


def test_permissions_are_least_privilege():
    for name, document in all_workflows().items():
        if "workflow_call" in document["on"]:
            # Reusable: its job inherits what each caller grants, so it declares nothing.
            assert "permissions" not in document
            assert all("permissions" not in job for job in document["jobs"].values())
            continue
        assert document["permissions"] == {}, f"{name}: default must be no permissions"
        for job_id, job in document["jobs"].items():
            granted = job.get("permissions")
            assert isinstance(granted, dict), f"{name}/{job_id} must declare its permissions"
            assert set(granted.values()) <= {"read", "write"}
            writes = {scope for scope, level in granted.items() if level == "write"}
            if writes == {"contents"}:
                # Only deploy-and-gate jobs push the delivery-state branch.
                assert job.get("uses") == DEPLOY
                assert job["with"]["operation"] != "deploy"
            elif writes == {"packages"}:
                assert (name, job_id) == ("ci.yml", "dev"), "only the build pushes images"
            else:
                assert not writes, f"{name}/{job_id} writes {writes}"


def test_deployments_of_one_environment_never_overlap():
    job = load("deploy.yml")["jobs"]["deploy"]
    assert job["concurrency"] == {
        "group": "deploy-${{ inputs.environment }}", "cancel-in-progress": False,
    }  # fmt: skip
    # Every deploy, promotion and rollback goes through that job.
    for name, document in all_workflows().items():
        for step in steps_of(document):
            if re.search(r"make (deploy|promote|rollback)\b", step.get("run", "")):
                assert name == "deploy.yml", f"{name} deploys outside deploy.yml"


def test_prod_runs_only_behind_the_production_environment():
    job = load("deploy.yml")["jobs"]["deploy"]
    assert job["environment"]["name"] == (
        "${{ inputs.environment == 'prod' && 'production' || inputs.environment }}"
    )
    callers = [
        (name, job_id, job["with"])
        for name, document in all_workflows().items()
        for job_id, job in document["jobs"].items()
        if job.get("uses") == DEPLOY
    ]
    prod = [(name, job_id) for name, job_id, inputs in callers if inputs["environment"] == "prod"]
    assert prod == [("release.yml", "prod")]
    assert (
        "prod"
        in load("rollback.yml")["on"]["workflow_dispatch"]["inputs"]["environment"]["options"]
    )  # a rollback of prod also passes through the environment's reviewers


def test_secrets_come_only_from_environments():
    text = "\n".join(path.read_text() for path in WORKFLOWS.glob("*.yml"))
    assert "secrets: inherit" not in text
    for name, document in all_workflows().items():
        for job_id, job in document["jobs"].items():
            if "secrets." in yaml.safe_dump(job):
                assert "environment" in job, f"{name}/{job_id} reads secrets without one"


def test_promotion_order_dev_test_stage_then_prod_on_a_release_tag():
    ci = load("ci.yml")
    assert set(ci["on"]) == {"pull_request", "push"}
    assert ci["on"]["push"] == {"branches": ["main"]}
    jobs = ci["jobs"]
    assert jobs["dev"]["needs"] == ["lint", "unit", "integration"]
    assert "make gate" in [step.get("run") for step in jobs["dev"]["steps"]]
    assert jobs["deploy-dev"]["needs"] == "dev"
    assert jobs["deploy-dev"]["with"]["environment"] == "dev"
    order = [("test", ["dev", "deploy-dev"]), ("stage", ["dev", "test"])]
    for job_id, needs in order:
        assert jobs[job_id]["needs"] == needs
        assert jobs[job_id]["if"] == "github.event_name == 'push'"  # main only, not PRs
        assert jobs[job_id]["with"] == {
            **jobs[job_id]["with"], "environment": job_id, "operation": "promote",
            "image": "${{ needs.dev.outputs.image }}",
        }  # fmt: skip
    # The same digest moves on: the build's output, never a rebuild.
    assert jobs["dev"]["outputs"]["image"] == "${{ steps.build.outputs.image }}"

    release = load("release.yml")
    pattern = load_delivery_settings(ROOT / "config").promotion.release_tag_pattern
    assert release["on"] == {"push": {"tags": [pattern]}}
    assert "sentiment release-candidate" in steps_of(release)[-1]["run"]
    assert release["jobs"]["prod"]["needs"] == "candidate"
    assert release["jobs"]["prod"]["with"]["release-tag"] == "${{ github.ref_name }}"


def test_manual_rollback_and_scheduled_retraining():
    rollback = load("rollback.yml")
    inputs = rollback["on"]["workflow_dispatch"]["inputs"]["environment"]
    assert inputs["options"] == ["test", "stage", "prod"]
    assert rollback["jobs"]["rollback"]["with"] == {
        "environment": "${{ inputs.environment }}", "operation": "rollback",
    }  # fmt: skip
    retrain = load("retrain.yml")
    assert set(retrain["on"]) == {"schedule", "workflow_dispatch"}
    assert "make train" in [step.get("run") for step in steps_of(retrain)]


def test_the_deploy_target_is_chosen_by_the_kubeconfig_secret_and_logged():
    steps = {step.get("name"): step for step in steps_of(load("deploy.yml"))}
    choose = steps["Choose the deploy target"]
    assert choose["env"] == {"KUBECONFIG_DATA": "${{ secrets.KUBECONFIG }}"}
    script = choose["run"]
    assert "DELIVERY_DEPLOY__TARGET=kubernetes" in script
    assert "DELIVERY_DEPLOY__TARGET=local" in script
    assert script.count("::notice title=Deploy target") == 2
    publish = steps["Publish evidence and ledger to the delivery-state branch"]
    assert publish["run"] == "make state-push"
    assert publish["if"].startswith("${{ always()")  # a failed gate's evidence is kept too


def test_every_make_target_the_workflows_call_exists():
    makefile = (ROOT / "Makefile").read_text()
    targets = set(re.findall(r"^([a-z][a-z-]*):", makefile, re.MULTILINE))
    runs = [step.get("run", "") for step in all_steps()]
    called = {target for run in runs for target in re.findall(r"\bmake ([a-z][a-z-]*)", run)}
    assert called
    assert called <= targets, called - targets


def test_the_act_event_is_a_same_repository_pull_request():
    """make act plays a pull request from this repository, so the build job runs."""
    event = json.loads((ROOT / ".github" / "act" / "pull_request.json").read_text())
    assert event["pull_request"]["head"]["repo"]["fork"] is False


def test_evidence_artifacts_include_the_dot_directory():
    """upload-artifact leaves out hidden files unless told: .delivery/ would upload empty."""
    uploads = [s for s in all_steps() if s.get("uses", "").startswith("actions/upload-artifact@")]
    evidence = [step for step in uploads if step["with"]["path"].startswith(".delivery")]
    assert len(evidence) == 2
    assert all(step["with"].get("include-hidden-files") is True for step in evidence)
