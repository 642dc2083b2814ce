"""`sentiment github`: the repository's settings on GitHub, and the runner facts act needs."""

import re

import click

from cli.output import reports_errors, workspace
from delivery.engine import detect_engine
from github.gh import apply, gh_api, missing_secrets, transcript
from github.settings import load_github_settings, plan_setup
from support.errors import ReleaseError

REPOSITORY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]{0,38}/[A-Za-z0-9._-]{1,100}$")
REMOTE = re.compile(r"github\.com[:/]([A-Za-z0-9-]+/[A-Za-z0-9._-]+?)(?:\.git)?/?$")


@click.group()
def github() -> None:
    """The repository's settings on GitHub (config/github.yaml, config/promotion.yaml)."""


def _repository(given: str | None, dry_run: bool) -> str:
    if given is None:
        remote = workspace().git.run("remote", "get-url", "origin", check=False)
        found = REMOTE.search(remote.stdout.decode().strip())
        if found:
            given = found[1]
        elif dry_run:
            given = "OWNER/REPO"
        else:
            given = gh_api("GET", "repos/{owner}/{repo}")["full_name"]
    if not REPOSITORY.fullmatch(given):
        raise ReleaseError(f"{given!r} is not a GitHub repository (OWNER/NAME)")
    return given


@github.command("setup")
@click.option("--repo", help="OWNER/NAME (default: the origin remote's GitHub repository).")
@click.option("--reviewers", default="",
              help="Comma-separated logins or ORG/TEAM added to the release environment's "
                   "reviewers (config/github.yaml has the rest).")  # fmt: skip
@click.option("--dry-run", is_flag=True, help="Print the API calls; make none.")
@reports_errors
def setup(repo: str | None, reviewers: str, dry_run: bool) -> None:
    """Create or update the GitHub environments the policy names (reviewers, self-review
    prevention, deployment branch and tag policies), their variables, the workflow
    permissions and the state branch's ruleset, with the gh CLI; then list the secrets
    each environment needs and how to set them (their values are never this command's)."""
    space = workspace()
    policy = space.policy
    needs_keys = {name: space.service_settings(name).auth.required for name in policy.names}
    plan = plan_setup(
        _repository(repo, dry_run), policy,
        load_github_settings(space.project.config_dir / "github.yaml"), needs_keys,
        tuple(r.strip() for r in reviewers.split(",") if r.strip()),
    )  # fmt: skip
    if dry_run:
        click.echo("\n".join(transcript(plan)))
        missing = {(s.environment, s.name) for s in plan.secrets}
    else:
        apply(plan, say=lambda line: click.echo(f"set: {line}"))
        missing = missing_secrets(plan)
    click.echo("\nSecrets (set by hand; this command never sees their values):")
    for secret in plan.secrets:
        state = "MISSING" if (secret.environment, secret.name) in missing else "set"
        if dry_run:
            state = "to set"
        click.echo(f"  {secret.environment} {secret.name} [{state}]: {secret.how}")


@github.command("act-env")
@reports_errors
def act_env() -> None:
    """Write the runner's own settings for `make act` (act --env-file) and print the
    file's path: this machine's engine and its local registry (plain HTTP), standing in for
    the runner's Docker and GHCR. Every other setting is config/github-actions.env's."""
    delivery = workspace().delivery
    engine = detect_engine(delivery.engine, tls_verify=False)
    path = delivery.state_dir / "act" / "runner.env"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        f"DELIVERY_ENGINE={engine.name}\n"
        f"DELIVERY_REGISTRY__ADDRESS={delivery.registry.address}\n"
        "DELIVERY_REGISTRY__TLS_VERIFY=false\n"
    )
    click.echo(path)


COMMANDS = [github]
