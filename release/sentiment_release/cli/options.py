"""Options and arguments several commands share."""

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import click

from sentiment_release.gates.checks.base import API_KEY_VARIABLE
from sentiment_release.promotion.policy import load_policy
from sentiment_release.support.errors import ReleaseError
from sentiment_release.support.project import Project

if TYPE_CHECKING:
    from sentiment_release.cli.workspace import Workspace


class Environment(click.ParamType):
    """An environment of the promotion policy (config/promotion.yaml), checked when the
    command line is parsed; the policy is read then, not when the CLI is imported."""

    name = "environment"

    def __init__(self, promoted_only: bool = False):
        self.promoted_only = promoted_only

    def convert(self, value, param, ctx) -> str:
        try:
            policy = load_policy(Project.here().policy_file)
        except ReleaseError as error:
            self.fail(str(error), param, ctx)
        environments = policy.promoted if self.promoted_only else policy.environments
        names = [environment.name for environment in environments]
        if value not in names:
            self.fail(f"{value!r} is not one of {', '.join(names)}", param, ctx)
        return value


environment_argument = click.argument("environment", type=Environment())
service_env_option = click.option(
    "--env", "environment", default=None, metavar="ENV",
    help="Environment whose service config to use (default: $APP_ENV, else dev).",
)  # fmt: skip
data_dir_option = click.option(
    "--data-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
    help="Local UCI files (default: $SENTIMENT_DATA_DIR, else the cached download).",
)  # fmt: skip
image_option = click.option(
    "--image", default=None,
    help="sha256:... or REGISTRY/NAME@sha256:... (default: the latest build).",
)  # fmt: skip


@dataclass(frozen=True)
class ServiceTarget:
    """A service to call: an environment deployed on this machine, or any URL."""

    name: str
    url: str
    api_key: str | None
    environment: str | None
    # The image deployed as `environment` here.
    image: str | None = None


def target_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """--env ENV (deployed here), --url URL (any service), or both (ENV, reached at URL);
    the API key from $SENTIMENT_API_KEY, else ENV's gates' key on this machine."""
    command = click.option("--url", default=None, metavar="URL",
                           help="Any service speaking this API (with --env: ENV's address).",
                           )(command)  # fmt: skip
    return click.option("--env", "environment", type=Environment(), default=None,
                        help="An environment deployed on this machine.")(command)  # fmt: skip


def resolve_target(space: "Workspace", environment: str | None, url: str | None) -> ServiceTarget:
    if environment is None and url is None:
        raise click.UsageError("give one of --env ENV and --url URL")
    key = os.environ.get(API_KEY_VARIABLE) or None
    image = address = None
    if url is not None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname or parts.query:
            raise click.BadParameter(f"{url!r} is not an http(s) URL", param_hint="--url")
        if parts.username or parts.password:
            raise click.BadParameter("credentials in a URL end up in logs: use "
                                     f"{API_KEY_VARIABLE}", param_hint="--url")  # fmt: skip
        url = url.rstrip("/")
        address = f"{parts.hostname}-{parts.port or parts.scheme}"
    if environment is None:
        return ServiceTarget(f"url-{address}", url, key, None)
    if url is None:
        record = space.records.deployment(environment)
        if record is None:
            raise ReleaseError(f"nothing is deployed as {environment} here: `make deploy ENV="
                               f"{environment}` (or pass --url)")  # fmt: skip
        url, image = record.url, record.image
    if key is None and space.service_settings(environment).auth.required:
        key = space.api_keys.gate_key(environment)
        if key is None:
            raise ReleaseError(f"{environment} asks for API keys: set {API_KEY_VARIABLE}, or "
                               "`make api-keys` for the gates' key")  # fmt: skip
        if address is not None and not _private_channel(url):
            raise ReleaseError(
                f"the gates' key of {environment} goes only over https or to this machine: "
                f"set {API_KEY_VARIABLE} to send a key to {url}"
            )
    name = environment if address is None else f"{environment}-{address}"
    return ServiceTarget(name, url, key, environment, image)


def _private_channel(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme == "https" or parts.hostname in ("127.0.0.1", "localhost", "::1")
