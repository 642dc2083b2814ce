"""Options and arguments several commands share."""

from pathlib import Path

import click

from promotion.policy import load_policy
from support.errors import ReleaseError
from support.project import Project


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
