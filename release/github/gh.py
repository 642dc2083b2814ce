"""Making a setup plan's calls with the gh CLI (`gh api`, authenticated as whoever ran
`gh auth login`), or printing them for DRY_RUN=1 without making any. Every request is an
argument list, its body JSON on stdin: nothing from config reaches a shell."""

import json
import shlex
import shutil
from collections.abc import Callable
from typing import Any

from github.settings import Listed, Lookup, Named, Plan, Put
from support.errors import ReleaseError
from support.process import run

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


def _resolved(value: Any, request: Request) -> Any:
    if isinstance(value, Lookup):
        return request("GET", value.path, None)["id"]
    if isinstance(value, dict):
        return {k: _resolved(v, request) for k, v in value.items()}
    if isinstance(value, list):
        return [_resolved(v, request) for v in value]
    return value


def _items(answer: Any, field: str | None) -> list[dict[str, Any]]:
    return answer if field is None else answer.get(field, [])


def apply(plan: Plan, request: Request = gh_api, say: Callable[[str], None] = print) -> None:
    """Makes every call of `plan`, reading first where the call depends on what is there."""
    for call in plan.calls:
        say(f"{call.why}")
        if isinstance(call, Put):
            request("PUT", call.path, _resolved(call.body, request))
        elif isinstance(call, Listed):
            present = _items(request("GET", f"{call.path}?per_page=100", None), call.field)
            # A branch policy named like the tag pattern is not the tag policy: by both.
            wanted = {(w["name"], w["type"]) for w in call.wanted}
            have = {(item["name"], item.get("type", "branch")) for item in present}
            for policy in call.wanted:
                if (policy["name"], policy["type"]) not in have:
                    request("POST", call.path, dict(policy))
            for item in present:
                if (item["name"], item.get("type", "branch")) not in wanted:
                    say(f"  removed {item.get('type', 'branch')} {item['name']} (not in config)")
                    request("DELETE", f"{call.path}/{item['id']}", None)
        else:
            present = _items(request("GET", f"{call.path}?{call.query}", None), call.field)
            found = next((i for i in present if i["name"] == call.body["name"]), None)
            if found is None:
                request("POST", call.path, call.body)
            else:
                request(call.update, f"{call.path}/{found[call.key_field]}", call.body)


def _shown(value: Any) -> Any:
    if isinstance(value, Lookup):
        return f"<id: gh api {value.path} --jq .id>"
    if isinstance(value, dict):
        return {k: _shown(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_shown(v) for v in value]
    return value


def _write(method: str, path: str, body: dict[str, Any] | None) -> str:
    line = f"gh api --method {method} -H '{API_VERSION}' {path}"
    if body is not None:
        line += f" --input - <<< {shlex.quote(json.dumps(_shown(body), sort_keys=True))}"
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
