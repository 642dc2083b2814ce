"""What `sentiment github setup` makes of config/github.yaml and the promotion policy: the
GitHub API calls that bring a repository's settings to them, as data (the runner in
sentiment_release/github/gh.py makes them, or prints them for DRY_RUN=1).

GitHub's rules these follow (REST API, 2022-11-28):
- environments: PUT /repos/{repo}/environments/{name} creates or updates one; with
  custom_branch_policies only the branches and tags listed under it may deploy there
  https://docs.github.com/en/rest/deployments/environments#create-or-update-an-environment
  https://docs.github.com/en/rest/deployments/branch-policies
- reviewers are given by numeric id, looked up from the login or team slug
- variables: gh variable set (creates or updates)
- "Allow GitHub Actions to create and approve pull requests":
  https://docs.github.com/en/rest/actions/permissions#set-default-workflow-permissions-for-a-repository
- rulesets: https://docs.github.com/en/rest/repos/rules
"""

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from sentiment_release.promotion.policy import Policy
from sentiment_release.support.config import load_yaml_settings
from sentiment_release.support.errors import ReleaseError

# A GitHub login, or ORG/TEAM (a team's slug): names, nothing that could leave an API path.
LOGIN = re.compile(
    r"^[A-Za-z0-9](?:[A-Za-z0-9]|-(?=[A-Za-z0-9])){0,38}(?:/[a-z0-9][a-z0-9_-]{0,99})?$"
)


def checked_login(login: str) -> str:
    if not LOGIN.fullmatch(login):
        raise ValueError(f"{login!r} is not a GitHub login or ORG/TEAM slug")
    return login


Login = Annotated[str, AfterValidator(checked_login)]


def checked_variable(name: str) -> str:
    """GitHub keeps variable names upper case; GITHUB_ is its own prefix."""
    if not re.fullmatch(r"[A-Z_][A-Z0-9_]{0,99}", name) or name.startswith("GITHUB_"):
        raise ValueError(f"{name!r} is not a variable name GitHub keeps (upper case, not GITHUB_)")
    return name


VariableName = Annotated[str, AfterValidator(checked_variable)]
REPOSITORY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]{0,38}/[A-Za-z0-9._-]{1,100}$")


def checked_repository(repository: str) -> str:
    """OWNER/NAME, which every API path starts from."""
    if not REPOSITORY.fullmatch(repository):
        raise ReleaseError(f"{repository!r} is not a GitHub repository (OWNER/NAME)")
    return repository


class GitHubSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    reviewers: dict[str, list[Login]] = Field(default_factory=dict)
    prevent_self_review: list[str] = Field(default_factory=list)
    variables: dict[str, dict[VariableName, str]] = Field(default_factory=dict)
    actions_create_pull_requests: bool = True


def load_github_settings(path: Path) -> GitHubSettings:
    return load_yaml_settings(GitHubSettings, path)


@dataclass(frozen=True)
class Lookup:
    """A reviewer's numeric id: what GET `path` answers in its field `id`."""

    path: str


@dataclass(frozen=True)
class Put:
    """PUT `body` to `path`: creates or replaces the whole setting."""

    path: str
    body: dict[str, Any]
    why: str


@dataclass(frozen=True)
class Listed:
    """The list at `path` (GET, its `field`) holds exactly `wanted`, compared by name:
    each missing one is POSTed, each other one DELETEd (by id), so nothing left from an
    earlier setup widens it."""

    path: str
    field: str
    wanted: tuple[dict[str, str], ...]
    why: str


@dataclass(frozen=True)
class Named:
    """An item of the collection at `path` (GET; its `field`, or the answer itself when
    None), found by its name: updated (`update` to `path`/<its `key_field`>) when present,
    else POSTed to `path`."""

    path: str
    field: str | None
    body: dict[str, Any]
    update: str
    key_field: str
    why: str
    # The list's query: the repository's own rulesets, not its organisation's too.
    query: str = "per_page=100"


Call = Put | Listed | Named


@dataclass(frozen=True)
class Secret:
    environment: str
    name: str
    how: str


@dataclass
class Plan:
    repository: str
    calls: list[Call] = field(default_factory=list)
    secrets: list[Secret] = field(default_factory=list)


def _reviewer(login: str) -> dict[str, Any]:
    if "/" in login:
        org, team = login.split("/", 1)
        return {"type": "Team", "id": Lookup(f"orgs/{org}/teams/{team}")}
    return {"type": "User", "id": Lookup(f"users/{login}")}


def plan_setup(
    repository: str,
    policy: Policy,
    settings: GitHubSettings,
    needs_api_keys: dict[str, bool],
    extra_reviewers: tuple[str, ...] = (),
) -> Plan:
    """The calls that make `repository`'s GitHub environments, deployment policies,
    variables, workflow permissions and state-branch ruleset what config/ says, and the
    secrets left to set by hand (their values are never this command's)."""
    plan = Plan(checked_repository(repository))
    github = {e.github_environment: e for e in policy.environments}
    unknown = (set(settings.reviewers) | set(settings.prevent_self_review)
               | set(settings.variables)) - set(github)  # fmt: skip
    if unknown:
        raise ReleaseError(
            f"config/github.yaml names GitHub environments the policy does not use: "
            f"{', '.join(sorted(unknown))} (config/promotion.yaml github_environment: "
            f"{', '.join(github)})"
        )
    release = policy.release_environment().github_environment
    base = f"repos/{repository}"
    for name, environment in github.items():
        reviewers = list(settings.reviewers.get(name, []))
        if name == release:
            for login in extra_reviewers:
                try:
                    checked_login(login)
                except ValueError as error:
                    raise ReleaseError(str(error)) from None
                if login not in reviewers:
                    reviewers.append(login)
            if not reviewers:
                raise ReleaseError(
                    f"no one would approve a release: name {name}'s reviewers in "
                    f"config/github.yaml (reviewers.{name}) or REVIEWERS=login,..."
                )
        # Only the branches and tags listed below deploy here (not "protected branches").
        only_listed = {"protected_branches": False, "custom_branch_policies": True}
        body: dict[str, Any] = {
            "deployment_branch_policy": only_listed,
            "reviewers": [_reviewer(login) for login in reviewers],
            "prevent_self_review": name in settings.prevent_self_review,
        }
        plan.calls.append(Put(f"{base}/environments/{name}", body,
                              why=f"the GitHub environment of {environment.name}"))  # fmt: skip
        # Runs of the release branch deploy everywhere (the prod rollback and load tests
        # are dispatched from it); release tags deploy only to the release environment.
        wanted = [{"name": policy.release_branch, "type": "branch"}]
        if name == release:
            wanted.append({"name": policy.release_tag_pattern, "type": "tag"})
        plan.calls.append(Listed(
            f"{base}/environments/{name}/deployment-branch-policies", "branch_policies",
            tuple(wanted), why=f"who may deploy to {name}: "
            + ", ".join(f"{w['type']} {w['name']}" for w in wanted),
        ))  # fmt: skip
        for variable, value in sorted(settings.variables.get(name, {}).items()):
            plan.calls.append(Named(
                f"{base}/environments/{name}/variables", "variables",
                {"name": variable, "value": value},
                update="PATCH", key_field="name", why=f"variable {variable} of {name}",
            ))  # fmt: skip
        plan.secrets.append(Secret(
            name, "EVIDENCE_SIGNING_KEY",
            f"sentiment keys github {environment.name} --out config/keys/{environment.name}-"
            f"YYYY-MM.pub | gh secret set EVIDENCE_SIGNING_KEY --env {name} --repo "
            f"{repository}; list the .pub under gates.{environment.name} in config/trust.yaml "
            f"and commit both",
        ))  # fmt: skip
        if needs_api_keys.get(environment.name):
            for secret, source in (("API_KEY_HASHES", "hashes"), ("GATE_API_KEY", "gate.key")):
                plan.secrets.append(Secret(
                    name, secret,
                    f"make api-keys, then gh secret set {secret} --env {name} --repo "
                    f"{repository} < .delivery/api-keys/{environment.name}/{source}",
                ))  # fmt: skip
        plan.secrets.append(Secret(
            name, "KUBECONFIG",
            f"optional: gh secret set KUBECONFIG --env {name} --repo {repository} < "
            f"KUBECONFIG-FILE (a cluster and namespace for {environment.name}; without it "
            f"the job runs the image in a container on the runner)",
        ))  # fmt: skip
    plan.calls.append(Put(
        f"{base}/actions/permissions/workflow",
        {"default_workflow_permissions": "read",
         "can_approve_pull_request_reviews": settings.actions_create_pull_requests},
        why="jobs ask for what they need; retrain.yml opens pull requests",
    ))  # fmt: skip
    plan.calls.append(
        Named(
            f"{base}/rulesets",
            None,
            {
                "name": f"{policy.state_branch}: append only",
                "target": "branch",
                "enforcement": "active",
                "conditions": {
                    "ref_name": {"include": [f"refs/heads/{policy.state_branch}"], "exclude": []}
                },
                "rules": [{"type": "deletion"}, {"type": "non_fast_forward"}],
            },
            update="PUT",
            key_field="id",
            query="per_page=100&includes_parents=false",
            why="evidence and ledgers are appended, never rewritten or deleted",
        )
    )
    return plan
