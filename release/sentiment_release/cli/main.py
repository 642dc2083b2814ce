"""`sentiment`: the release tooling's one command. Its subcommands live in
sentiment_release/cli/model.py, sentiment_release/cli/delivery.py,
sentiment_release/cli/promotion.py, sentiment_release/cli/keys.py,
sentiment_release/cli/api_keys.py, sentiment_release/cli/benchmark.py and
sentiment_release/cli/observe.py, sentiment_release/cli/client.py, sentiment_release/cli/loadtest.py
and sentiment_release/cli/github.py; each parses, calls the library and prints."""

import click

from sentiment_release.cli import (
    api_keys,
    benchmark,
    client,
    delivery,
    github,
    keys,
    loadtest,
    model,
    observe,
    promotion,
)


@click.group()
def cli() -> None:
    """Train, serve, build, deploy, gate and promote the sentiment model."""


for command in (
    *model.COMMANDS,
    *delivery.COMMANDS,
    *promotion.COMMANDS,
    *keys.COMMANDS,
    *api_keys.COMMANDS,
    *benchmark.COMMANDS,
    *observe.COMMANDS,
    *client.COMMANDS,
    *loadtest.COMMANDS,
    *github.COMMANDS,
):
    cli.add_command(command)
