"""`sentiment`: the release tooling's one command. Its subcommands live in cli/model.py,
cli/delivery.py, cli/promotion.py, cli/keys.py, cli/api_keys.py, cli/benchmark.py and
cli/observe.py, cli/client.py, cli/loadtest.py and cli/github.py;
each parses, calls the library and prints."""

import click

from cli import (
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
