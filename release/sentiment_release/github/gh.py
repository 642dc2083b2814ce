"""Making a setup plan's calls with the gh CLI (`gh api`, authenticated as whoever ran
`gh auth login`), or printing them for DRY_RUN=1 without making any. Every request is an
argument list, its body JSON on stdin: nothing from config reaches a shell."""

import json
import shlex
import shutil
from collections.abc import Callable
from typing import Any

from sentiment_release.github.settings import Listed, Lookup, Named, Plan, Put
from sentiment_release.support.errors import ReleaseError
from sentiment_release.support.process import run

API_VERSION = "X-GitHub-Api-Version: 2022-11-28"


class GitHubApiError(ReleaseError):
    pass


def gh_api(method: str, path: str, body: dict[str, Any] | None = None) -> Any:
    """One REST request through `gh api`; its JSON answer (None when empty)."""
    gh = shutil.which("gh")
    if gh is None:
        raise GitHubApiError("gh (GitHub's CLI) is not installed: https://cli.github.com")
    args = [gh, "api", "--method", method, "-H", API_VERSION, path]
    if body is not None:
        args += ["--input", "-"]
    done = run(args, input=json.dumps(body) if body is not None else None, check=False)
    if not done.ok:
        raise GitHubApiError(f"gh api {method} {path} failed: {done.stderr.strip()[-500:]}")
    return json.loads(done.stdout) if done.stdout.strip() else None


Request = Callable[[str, str, dict[str, Any] | None], Any]


def _with_ids(value: Any, id_of: Callable[[Lookup], Any]) -> Any:
    """`value` with each Lookup in it replaced by `id_of` it."""
    if isinstance(value, Lookup):
        return id_of(value)
    if isinstance(value, dict):
        return {k: _with_ids(v, id_of) for k, v in value.items()}
    if isinstance(value, list):
        return [_with_ids(v, id_of) for v in value]
    return value


def _policy(item: dict[str, Any]) -> tuple[str, str]:
    """A branch policy by name and type: one named like the tag pattern is not the tag one."""
    return item["name"], item.get("type", "branch")


def _items(answer: Any, field: str | None) -> list[dict[str, Any]]:
    return answer if field is None else answer.get(field, [])


def apply(plan: Plan, request: Request = gh_api, say: Callable[[str], None] = print) -> None:
    """Makes every call of `plan`, reading first where the call depends on what is there."""

    def id_of(lookup: Lookup) -> Any:
        return request("GET", lookup.path, None)["id"]

    for call in plan.calls:
        say(f"{call.why}")
        if isinstance(call, Put):
            request("PUT", call.path, _with_ids(call.body, id_of))
        elif isinstance(call, Listed):
            present = _items(request("GET", f"{call.path}?per_page=100", None), call.field)
            wanted = {_policy(policy) for policy in call.wanted}
            have = {_policy(item) for item in present}
            for policy in call.wanted:
                if _policy(policy) not in have:
                    request("POST", call.path, dict(policy))
            for item in present:
                if _policy(item) not in wanted:
                    name, kind = _policy(item)
                    say(f"  removed {kind} {name} (not in config)")
                    request("DELETE", f"{call.path}/{item['id']}", None)
        else:
            present = _items(request("GET", f"{call.path}?{call.query}", None), call.field)
            found = next((i for i in present if i["name"] == call.body["name"]), None)
            if found is None:
                request("POST", call.path, call.body)
            else:
                request(call.update, f"{call.path}/{found[call.key_field]}", call.body)


def _shown_id(lookup: Lookup) -> str:
    return f"<id: gh api {lookup.path} --jq .id>"


def _write(method: str, path: str, body: dict[str, Any] | None) -> str:
    line = f"gh api --method {method} -H '{API_VERSION}' {path}"
    if body is not None:
        line += (
            f" --input - <<< {shlex.quote(json.dumps(_with_ids(body, _shown_id), sort_keys=True))}"
        )
    return line


def transcript(plan: Plan) -> list[str]:
    """The exact calls `apply` makes, for a repository that has none of it yet (lines
    marked "when ..." depend on what a GET answers)."""
    lines: list[str] = []
    for call in plan.calls:
        lines.append(f"# {call.why}")
        if isinstance(call, Put):
            lines.append(_write("PUT", call.path, call.body))
            continue
        query = call.query if isinstance(call, Named) else "per_page=100"
        lines.append(f"gh api --method GET -H '{API_VERSION}' '{call.path}?{query}'")
        if isinstance(call, Listed):
            for wanted in call.wanted:
                when = f"  # when {wanted['type']} {wanted['name']!r} is not listed"
                lines.append(_write("POST", call.path, dict(wanted)) + when)
            lines.append(_write("DELETE", f"{call.path}/<id>", None)
                         + "  # for each other one listed (by name and type)")  # fmt: skip
        else:
            lines.append(_write("POST", call.path, call.body) + "  # when none has its name")
            lines.append(_write(call.update, f"{call.path}/<{call.key_field}>", call.body)
                         + "  # when one has")  # fmt: skip
    return lines


def missing_secrets(plan: Plan, request: Request = gh_api) -> set[tuple[str, str]]:
    """(environment, secret) of the plan's secrets that the repository lacks."""
    have: set[tuple[str, str]] = set()
    for environment in {secret.environment for secret in plan.secrets}:
        answer = request("GET", f"repos/{plan.repository}/environments/{environment}/secrets",
                         None)  # fmt: skip
        have |= {(environment, s["name"]) for s in answer.get("secrets", [])}
    return {(s.environment, s.name) for s in plan.secrets} - have
