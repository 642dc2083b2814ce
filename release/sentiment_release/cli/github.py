"""`sentiment github`: the repository's settings on GitHub, and its workflows run here
with act as GitHub runs them."""

import json
import os
import re
import subprocess
import tempfile
from pathlib import Path

import click

from sentiment_release.cli.output import reports_errors, workspace
from sentiment_release.cli.workspace import Workspace
from sentiment_release.delivery.engine import detect_engine
from sentiment_release.github.act import (
    event_payload,
    load_act_secrets,
    scope_environment_secrets,
    stand_in_flags,
    write_runner_env,
)
from sentiment_release.github.gh import apply, gh_api, missing_secrets, transcript
from sentiment_release.github.settings import checked_repository, load_github_settings, plan_setup
from sentiment_release.support.errors import ReleaseError
from sentiment_release.support.process import tool

REMOTE = re.compile(
    r"^(?:git@github\.com:|(?:https|ssh)://(?:git@)?github\.com/)"
    r"([A-Za-z0-9-]+/[A-Za-z0-9._-]+?)(?:\.git)?/?$"
)


@click.group()
def github() -> None:
    """The repository's settings on GitHub (config/github.yaml, config/promotion.yaml)."""


def _repository(space: Workspace, given: str | None, dry_run: bool) -> str:
    if given is None:
        remote = space.git.run("remote", "get-url", "origin", check=False)
        found = REMOTE.search(remote.stdout.decode().strip())
        if found:
            given = found[1]
        elif dry_run:
            given = "OWNER/REPO"
        else:
            given = gh_api("GET", "repos/{owner}/{repo}")["full_name"]
    return checked_repository(given)


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
    repository = _repository(space, repo, dry_run)
    if repo is None and not dry_run:
        # A clone of someone else's repository points there: say whose settings change.
        click.confirm(f"change the GitHub settings of {repository}?", abort=True)
    plan = plan_setup(
        repository, policy,
        load_github_settings(space.project.config_dir / "github.yaml"), needs_keys,
        tuple(r.strip() for r in reviewers.split(",") if r.strip()),
    )  # fmt: skip
    if dry_run:
        click.echo("\n".join(transcript(plan)))
    else:
        apply(plan, say=lambda line: click.echo(f"set: {line}"))
        missing = missing_secrets(plan)
    click.echo("\nSecrets (set by hand; this command never sees their values):")
    for secret in plan.secrets:
        if dry_run:
            state = "to set"
        else:
            state = "MISSING" if (secret.environment, secret.name) in missing else "set"
        click.echo(f"  {secret.environment} {secret.name} [{state}]: {secret.how}")


def _scope_secrets(space: Workspace, root: Path) -> bool:
    """Rewrites the workflows' secrets as GitHub scopes them (sentiment_release/github/act.py) and
    commits that, in a checkout whose origin is a local repository (a disposable fork: the jobs push
    the state branch there); True when something changed."""
    origin = space.git.run("remote", "get-url", "origin", check=False).stdout.decode().strip()
    if not origin or not Path(origin).is_dir():
        raise ReleaseError(
            "--secrets runs the workflows as on GitHub, and they push to origin: use a "
            f"disposable clone whose origin is a local bare repository (origin: {origin!r})"
        )
    changed = []
    for path in sorted((root / ".github" / "workflows").glob("*.yml")):
        text = path.read_text()
        scoped = scope_environment_secrets(text)
        if scoped != text:
            path.write_text(scoped)
            changed.append(str(path.relative_to(root)))
    if changed:
        space.git("add", "--", *changed)
        space.git("-c", "user.name=act", "-c", "user.email=act@localhost", "commit", "--quiet",
                  "-m", "act: each job's secrets as GitHub scopes them")  # fmt: skip
    return bool(changed)


@github.command("act")
@click.argument("event", type=click.Choice(["pull_request", "push", "tag"]),
                default="pull_request")  # fmt: skip
@click.option("--tag", help="The release tag pushed (event tag).")
@click.option("--secrets", "secrets_file", type=click.Path(exists=True, dir_okay=False,
              path_type=Path), help="YAML: repository: {NAME: value}, environments: "
              "{ENV: {NAME: value}}; what GitHub would hold.")  # fmt: skip
@reports_errors
def act(event: str, tag: str | None, secrets_file: Path | None) -> None:
    """Run the workflow of EVENT here with act, as GitHub would: a pull request, a push to
    the release branch (ci.yml), or a release tag (release.yml). The jobs apply
    config/github-actions.env; this machine's engine and local registry stand in for the
    runner's; artifacts go to a store of this run; with --secrets, each job gets the
    secrets of the environment it declares (and this checkout's workflows are rewritten
    for that and committed: use a disposable clone)."""
    space = workspace()
    root = space.project.root
    if event == "tag" and not tag:
        raise ReleaseError("event tag needs --tag: the release tag that was pushed")
    space.ensure_registry()
    delivery = space.delivery
    engine = detect_engine(delivery.engine, tls_verify=False)
    act_dir = delivery.state_dir / "act"
    runner_env = write_runner_env(delivery.state_dir, engine.name, delivery.registry.address)
    act_event, workflow, payload = event_payload(event, space.policy.release_branch, tag)
    artifacts = Path(tempfile.mkdtemp(prefix="artifacts-", dir=act_dir))
    event_file = act_dir / "event.json"
    event_file.write_text(json.dumps(payload))
    argv = [tool("act"), act_event, "--workflows", f".github/workflows/{workflow}",
            "--eventpath", str(event_file), "--platform", "ubuntu-latest=-self-hosted",
            "--concurrent-jobs", "1", "--env-file", str(runner_env),
            "--env", f"ACT_ARTIFACTS={artifacts}", *stand_in_flags(root)]  # fmt: skip
    if secrets_file is not None:
        secrets = load_act_secrets(secrets_file)
        if _scope_secrets(space, root):
            click.echo("committed the workflows with each job's secrets scoped as on GitHub")
        secret_file = act_dir / "secrets.env"
        secret_file.unlink(missing_ok=True)
        descriptor = os.open(secret_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            handle.write(secrets.act_secret_file())
        argv += ["--secret-file", str(secret_file)]
    else:
        secret_file = None
        argv += ["--secret-file", os.devnull]
    # Each job keeps its state in its own checkout, as on GitHub (this one's is for the
    # registry and the run's files).
    env = {k: v for k, v in os.environ.items() if k != "DELIVERY_STATE_DIR"}
    try:
        done = subprocess.run(argv, cwd=root, env=env, stdin=subprocess.DEVNULL,  # noqa: S603
                              check=False)  # fmt: skip
    finally:
        if secret_file is not None:
            secret_file.unlink(missing_ok=True)
    if done.returncode != 0:
        raise click.exceptions.Exit(done.returncode)


COMMANDS = [github]
