"""`sentiment github setup` (make github-setup): the calls it makes to bring a repository's
GitHub settings to config/github.yaml and the policy, checked against a transcript (the
dry run) and against a fake API (what a real run sends, given what is there)."""

import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from sentiment_release.cli.main import cli
from sentiment_release.github.gh import apply, gh_api, missing_secrets
from sentiment_release.github.settings import (
    GitHubSettings,
    Listed,
    Put,
    load_github_settings,
    plan_setup,
)
from sentiment_release.promotion.policy import load_policy
from sentiment_release.support.errors import ReleaseError
from tests.conftest import CONFIG_DIR, ROOT

TRANSCRIPT = ROOT / "tests" / "fixtures" / "github" / "setup-dry-run.txt"
POLICY = load_policy(CONFIG_DIR / "promotion.yaml")
KEYS = {"dev": False, "test": False, "stage": True, "prod": True}


def plan(settings: GitHubSettings | None = None, reviewers=("alice",)):
    settings = settings or load_github_settings(CONFIG_DIR / "github.yaml")
    return plan_setup("acme/sentiment", POLICY, settings, KEYS, reviewers)


def test_the_dry_run_prints_the_transcript_and_makes_no_call(monkeypatch, tmp_path):
    # No gh on PATH: a call would fail loudly.
    monkeypatch.setenv("PATH", str(tmp_path))
    done = CliRunner().invoke(cli, ["github", "setup", "--dry-run", "--repo", "acme/sentiment",
                                    "--reviewers", "alice,acme/release-managers"])  # fmt: skip
    assert done.exit_code == 0, done.output
    assert done.stdout == TRANSCRIPT.read_text()


class FakeGitHub:
    """Answers GETs from `state`, records every request."""

    def __init__(self, state: dict[str, object]):
        self.state, self.requests = state, []

    def __call__(self, method: str, path: str, body):
        self.requests.append((method, path, body))
        if method == "GET":
            return self.state[path.split("?")[0]]
        return None


def test_a_real_run_creates_what_is_missing_updates_what_differs_and_removes_what_widens():
    repo = "repos/acme/sentiment"
    settings = GitHubSettings(
        reviewers={"production": ["alice", "acme/release-managers"]},
        prevent_self_review=["production"],
        variables={"stage": {"SERVICE_URL": "https://stage.acme.test"}},
    )
    github = FakeGitHub({
        "users/alice": {"id": 101},
        "orgs/acme/teams/release-managers": {"id": 7},
        **{f"{repo}/environments/{e}/deployment-branch-policies": {"branch_policies": []}
           for e in ("dev", "test")},
        # Left by hand: a feature branch could deploy to stage; main is there already.
        f"{repo}/environments/stage/deployment-branch-policies": {"branch_policies": [
            {"id": 1, "name": "main", "type": "branch"},
            {"id": 2, "name": "feature/*", "type": "branch"}]},
        # A *branch* policy named like the tag pattern: any branch v... could deploy.
        f"{repo}/environments/production/deployment-branch-policies": {"branch_policies": [
            {"id": 3, "name": "v*", "type": "tag"}, {"id": 4, "name": "v*", "type": "branch"}]},
        f"{repo}/environments/stage/variables": {"variables": [
            {"name": "SERVICE_URL", "value": "http://old"}]},
        f"{repo}/rulesets": [{"id": 55, "name": "something else"}],
    })  # fmt: skip
    apply(plan(settings, reviewers=()), request=github, say=lambda line: None)
    writes = [(m, p, b) for m, p, b in github.requests if m != "GET"]
    production = next(b for m, p, b in writes if p == f"{repo}/environments/production")
    assert production == {
        "deployment_branch_policy": {"protected_branches": False, "custom_branch_policies": True},
        "reviewers": [{"type": "User", "id": 101}, {"type": "Team", "id": 7}],
        "prevent_self_review": True,
    }
    main = {"name": "main", "type": "branch"}
    rest = [(m, p.removeprefix(repo), b) for m, p, b in writes
            if p != f"{repo}/environments/production"]  # fmt: skip
    assert rest == [
        ("PUT", "/environments/dev", _environment()),
        ("POST", "/environments/dev/deployment-branch-policies", main),
        ("PUT", "/environments/test", _environment()),
        ("POST", "/environments/test/deployment-branch-policies", main),
        ("PUT", "/environments/stage", _environment()),
        ("DELETE", "/environments/stage/deployment-branch-policies/2", None),
        (
            "PATCH",
            "/environments/stage/variables/SERVICE_URL",
            {"name": "SERVICE_URL", "value": "https://stage.acme.test"},
        ),
        ("POST", "/environments/production/deployment-branch-policies", main),
        ("DELETE", "/environments/production/deployment-branch-policies/4", None),
        (
            "PUT",
            "/actions/permissions/workflow",
            {"default_workflow_permissions": "read", "can_approve_pull_request_reviews": True},
        ),
        ("POST", "/rulesets", plan().calls[-1].body),
    ]


def _environment() -> dict:
    only_listed = {"protected_branches": False, "custom_branch_policies": True}
    return {"deployment_branch_policy": only_listed, "reviewers": [], "prevent_self_review": False}


def test_every_environment_takes_deployments_only_from_the_release_branch_and_prod_from_tags():
    """Without a deployment branch policy, any branch's workflow (or a dispatch from a
    branch) runs in the environment with its secrets.
    https://docs.github.com/en/actions/managing-workflow-runs-and-deployments/managing-deployments/managing-environments-for-deployment#deployment-branches-and-tags
    """
    calls = plan().calls
    for environment in POLICY.environments:
        name = environment.github_environment
        put = next(
            c for c in calls if isinstance(c, Put) and c.path.endswith(f"/environments/{name}")
        )
        assert put.body["deployment_branch_policy"] == {"protected_branches": False,
                                                        "custom_branch_policies": True}  # fmt: skip
        [listed] = [
            c for c in calls if isinstance(c, Listed) and f"/environments/{name}/" in c.path
        ]
        wanted = {(w["type"], w["name"]) for w in listed.wanted}
        if environment.requires_release_tag:
            assert wanted == {
                ("branch", POLICY.release_branch),
                ("tag", POLICY.release_tag_pattern),
            }
            assert put.body["reviewers"]
            assert put.body["prevent_self_review"] is True
        else:
            assert wanted == {("branch", POLICY.release_branch)}


def test_a_release_environment_without_reviewers_is_refused():
    with pytest.raises(ReleaseError, match="no one would approve a release"):
        plan(reviewers=())


def test_config_naming_an_environment_the_policy_lacks_is_refused():
    with pytest.raises(ReleaseError, match="does not use: staging"):
        plan(GitHubSettings(variables={"staging": {"SERVICE_URL": "x"}}))


@pytest.mark.parametrize(
    "login",
    ["-alice", "alice;rm", "a" * 40, "org/team/extra", "", "org/..", "org/.", "a--b", "org/Team"],
)
def test_a_reviewer_that_is_not_a_login_or_team_is_refused(tmp_path: Path, login: str):
    config = tmp_path / "github.yaml"
    config.write_text(json.dumps({"reviewers": {"production": [login]}}))
    with pytest.raises(ReleaseError, match="invalid configuration"):
        load_github_settings(config)


@pytest.mark.parametrize("login", ["org/..", "org/.", "../../repos/victim/x", "a/b?c", "-x"])
def test_a_reviewer_given_on_the_command_line_is_checked_as_config_is(login: str):
    done = CliRunner().invoke(cli, ["github", "setup", "--dry-run", "--repo", "acme/sentiment",
                                    "--reviewers", f"alice,{login}"])  # fmt: skip
    assert done.exit_code == 1
    assert "is not a GitHub login or ORG/TEAM slug" in done.output


def test_variables_are_upper_case_and_never_github_s_own(tmp_path: Path):
    for name in ("service_url", "GITHUB_TOKEN"):
        config = tmp_path / "github.yaml"
        config.write_text(json.dumps({"variables": {"stage": {name: "x"}}}))
        with pytest.raises(ReleaseError, match="invalid configuration"):
            load_github_settings(config)


@pytest.mark.parametrize("repo", ["acme", "acme/sentiment/x", "../etc", "acme/sent iment"])
def test_a_repository_that_is_not_owner_and_name_is_refused(repo: str):
    done = CliRunner().invoke(cli, ["github", "setup", "--dry-run", "--repo", repo,
                                    "--reviewers", "alice"])  # fmt: skip
    assert done.exit_code == 1
    assert "is not a GitHub repository" in done.output


def test_missing_secrets_are_named(tmp_path):
    repo = "repos/acme/sentiment"
    github = FakeGitHub({
        **{f"{repo}/environments/{e}/secrets": {"secrets": [{"name": "EVIDENCE_SIGNING_KEY"}]}
           for e in ("dev", "test", "stage")},
        f"{repo}/environments/production/secrets": {"secrets": []},
    })  # fmt: skip
    missing = missing_secrets(plan(), request=github)
    assert ("production", "EVIDENCE_SIGNING_KEY") in missing
    assert ("stage", "API_KEY_HASHES") in missing
    assert ("stage", "EVIDENCE_SIGNING_KEY") not in missing


def test_gh_gets_an_argument_list_and_the_body_on_stdin(tmp_path, monkeypatch):
    log = tmp_path / "log"
    gh = tmp_path / "gh"
    gh.write_text(f'#!/bin/sh\nprintf "%s\\n" "$@" > {log}\ncat >> {log}\necho \'{{"id": 5}}\'\n')
    gh.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    body = {"name": "x'; rm -rf / #", "value": "$(id)"}
    assert gh_api("POST", "repos/acme/sentiment/rulesets", body) == {"id": 5}
    lines = log.read_text().splitlines()
    assert lines[:7] == ["api", "--method", "POST", "-H", "X-GitHub-Api-Version: 2022-11-28",
                         "repos/acme/sentiment/rulesets", "--input"]  # fmt: skip
    assert json.loads(lines[-1]) == body


def test_a_failed_call_says_which(tmp_path, monkeypatch):
    gh = tmp_path / "gh"
    gh.write_text("#!/bin/sh\necho 'HTTP 403: Resource not accessible' >&2\nexit 1\n")
    gh.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(
        ReleaseError, match="gh api PUT repos/a/b/environments/dev failed: HTTP 403"
    ):
        gh_api("PUT", "repos/a/b/environments/dev", {})
