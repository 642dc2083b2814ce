"""`sentiment loadtest PROFILE --env ENV | --url URL`: a load-test profile of
config/loadtest.yaml against a running service, kept in .delivery/loadtests/ and compared
with the previous run and the release's gate figures."""

import sys

import click

from sentiment_release.cli.options import data_dir_option, resolve_target, target_options
from sentiment_release.cli.output import log, reports_errors, workspace
from sentiment_release.loadtest.profiles import load_loadtest_config
from sentiment_release.loadtest.run import LoadTester, Target, WebUI
from sentiment_release.support.errors import ReleaseError
from sentiment_release.support.project import Project


class ProfileName(click.ParamType):
    """A profile of config/loadtest.yaml, checked when the command line is parsed."""

    name = "profile"

    def convert(self, value, param, ctx) -> str:
        try:
            profiles = load_loadtest_config(Project.here().config_dir).profiles
        except ReleaseError as error:
            self.fail(str(error), param, ctx)
        if value not in profiles:
            self.fail(f"{value!r} is not one of {', '.join(profiles)}", param, ctx)
        return value


@click.command()
@click.argument("profile", type=ProfileName())
@target_options
@click.option(
    "--confirm",
    default=None,
    metavar="ENV",
    help="The name of a customer-facing environment (prod): load-test it anyway.",
)
@click.option(
    "--ui", is_flag=True, help="locust's web UI on 127.0.0.1 (--ui-port), to watch the run live."
)
@click.option("--ui-port", type=click.IntRange(1024, 65535), default=8089, show_default=True)
@data_dir_option
@reports_errors
def loadtest(profile, environment, url, confirm, ui, ui_port, data_dir) -> None:
    """Run PROFILE against --env ENV (deployed here) or --url URL: an HTML report, CSVs
    and a table against the previous run and the gate figures; exit 1 when the run
    breaks the profile's thresholds. The key: $SENTIMENT_API_KEY, else ENV's gates' key."""
    space = workspace(data_dir)
    found = resolve_target(space, environment, url)
    target = Target(found.name, found.url, found.api_key, found.environment, found.image)
    tester = LoadTester(space, load_loadtest_config(space.project.config_dir), log)
    web = WebUI(ui_port) if ui else None
    if web is not None:
        click.echo(f"locust's UI: {web.url} (the run starts at once; the UI closes a minute "
                   "after it ends)")  # fmt: skip
    finished = tester.run(target, profile, confirm, web)
    click.echo(finished.report)
    click.echo(f"report {finished.directory / 'report.html'}")
    if not finished.passed:
        sys.exit(1)


COMMANDS = [loadtest]
