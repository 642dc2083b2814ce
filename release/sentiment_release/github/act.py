"""The workflows under act (`sentiment github act`) as GitHub runs them: what act leaves
out, put back, and nothing else changed.

act runs the jobs, their needs and conditions, and applies the called-workflow rule
itself (a called workflow's jobs get only the secrets their caller passes or inherits;
nektos/act pkg/runner/expression.go, getWorkflowSecrets). It has no environment secrets:
every job gets the same ones. GitHub gives a job the secrets of the environment it
declares, over the repository's. So the run's copy of a workflow reads `secrets.NAME` in a
job of environment E as `secrets['E__NAME'] || secrets.NAME`, and the secrets file's
environment secrets reach act under those names: a job gets an environment's secret only
where GitHub would give it.
https://docs.github.com/en/actions/security-for-github-actions/security-guides/using-secrets-in-github-actions
"""

import re
from pathlib import Path
from typing import Annotated

import yaml
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from sentiment_release.support.config import load_yaml_settings

SecretName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")]
EnvironmentName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")]
EXPRESSION = re.compile(r"\$\{\{(.*?)\}\}", re.DOTALL)
SECRET = re.compile(r"\bsecrets\.([A-Za-z_][A-Za-z0-9_]*)\b")
JOB = re.compile(r"^  ([A-Za-z_][A-Za-z0-9_-]*):\s*$")
LINT_NOTE = "# zizmor: ignore[overprovisioned-secrets] (act: environment secrets)"


class ActSecrets(BaseModel):
    """A local secrets file: what GitHub would hold for the repository and for each of
    its environments."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    repository: dict[SecretName, str] = Field(default_factory=dict)
    environments: dict[EnvironmentName, dict[SecretName, str]] = Field(default_factory=dict)

    def act_secret_file(self) -> str:
        """act's --secret-file (dotenv, double-quoted): repository secrets by their names,
        environment E's as E__NAME."""
        named = dict(self.repository)
        for environment, secrets in self.environments.items():
            named |= {f"{environment}__{name}": value for name, value in secrets.items()}
        return "".join(f'{name}="{_escaped(value)}"\n' for name, value in sorted(named.items()))


def _escaped(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def load_act_secrets(path: Path) -> ActSecrets:
    return load_yaml_settings(ActSecrets, path)


def _environment_expression(job: dict) -> str | None:
    """The name of the environment a job declares, as an expression (None: none)."""
    environment = job.get("environment")
    if isinstance(environment, dict):
        environment = environment.get("name")
    if not environment:
        return None
    found = EXPRESSION.fullmatch(str(environment).strip())
    if found:
        return found[1].strip()
    return "'" + str(environment).replace("'", "''") + "'"


def scope_environment_secrets(text: str) -> str:
    """A workflow's text with every job's secrets read as GitHub gives them to that job."""
    jobs = yaml.safe_load(text).get("jobs", {})
    lines = text.splitlines(keepends=True)
    starts = [i for i, line in enumerate(lines) if JOB.match(line)]
    for start, end in reversed(list(zip(starts, [*starts[1:], len(lines)], strict=True))):
        environment = _environment_expression(jobs.get(JOB.match(lines[start])[1]) or {})
        if environment is None:
            continue

        def scoped(found: re.Match, environment: str = environment) -> str:
            name = found[1]
            return f"(secrets[format('{{0}}__{name}', {environment})] || secrets.{name})"

        for i in range(start, end):
            if LINT_NOTE in lines[i]:
                continue  # rewritten already
            line = EXPRESSION.sub(lambda e: "${{" + SECRET.sub(scoped, e[1]) + "}}", lines[i])
            if line != lines[i]:
                # The lint of the run's copy: a secret read by an expression's index is
                # what act needs here, on purpose.
                lines[i] = line.rstrip("\n") + f"  {LINT_NOTE}\n"
    return "".join(lines)


def write_runner_env(state_dir: Path, engine: str, registry: str) -> Path:
    """act's --env-file: the runner's own settings, and only those (this machine's engine,
    its local registry in plain HTTP, standing in for the runner's Docker and GHCR); every
    other setting is config/github-actions.env's, applied by the jobs as on GitHub."""
    path = state_dir / "act" / "runner.env"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        f"DELIVERY_ENGINE={engine}\nDELIVERY_REGISTRY__ADDRESS={registry}\n"
        "DELIVERY_REGISTRY__TLS_VERIFY=false\n"
    )
    return path


PINNED = re.compile(r"^\s*(?:-\s*)?uses:\s*([A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+@[0-9a-f]{40})", re.M)
# GitHub's services that act cannot reach here, each stood in for by an action of
# .github/act/ that keeps GitHub's rules; every other pinned action's step is skipped
# under act and points at one that fails if it ever runs.
STAND_INS = {"actions/upload-artifact": "upload-artifact",
             "actions/download-artifact": "download-artifact"}  # fmt: skip


def stand_in_flags(root: Path) -> list[str]:
    """act's --local-repository for each pinned remote action the workflows and local
    actions name (act fetches them all, even for skipped steps; github.com is not
    reachable). actions/checkout is act's own."""
    texts = [p.read_text() for p in sorted((root / ".github").rglob("*.yml"))
             if "act" not in p.relative_to(root / ".github").parts[:1]]  # fmt: skip
    flags = []
    for action in sorted({found for text in texts for found in PINNED.findall(text)}):
        name = action.split("@")[0]
        if name == "actions/checkout":
            continue
        stand_in = root / ".github" / "act" / STAND_INS.get(name, "stand-in")
        flags += ["--local-repository", f"{action}={stand_in}"]
    return flags


def event_payload(event: str, branch: str, tag: str | None) -> tuple[str, str, dict]:
    """act's event name, the workflow that answers it, and the event's payload."""
    repository = {"full_name": "local/sentiment-mlops", "name": "sentiment-mlops",
                  "default_branch": branch}  # fmt: skip
    if event == "pull_request":
        same = {"fork": False, "full_name": repository["full_name"]}  # so it is built
        return "pull_request", "ci.yml", {
            "action": "synchronize", "number": 1, "repository": repository,
            "pull_request": {"number": 1, "head": {"ref": "act", "repo": same},
                             "base": {"ref": branch, "repo": same}},
        }  # fmt: skip
    if event == "push":
        return "push", "ci.yml", {"ref": f"refs/heads/{branch}", "repository": repository}
    return "push", "release.yml", {"ref": f"refs/tags/{tag}", "repository": repository}
