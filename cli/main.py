"""`sentiment` subcommands. Each one parses options, calls a library function, reports."""

import json
import os
import sys
from importlib import resources
from pathlib import Path

import click
import yaml

from cli.delivery import COMMANDS as DELIVERY_COMMANDS
from cli.promotion import COMMANDS as PROMOTION_COMMANDS
from model_registry import BundleError, ModelRegistry
from settings import ENVIRONMENTS, ConfigError, Settings, load_settings
from training.data_source import resolve_data_dir
from training.dataset import DatasetError

env_option = click.option(
    "--env",
    "environment",
    type=click.Choice(ENVIRONMENTS),
    default=None,
    help="Environment whose config to use (default: $APP_ENV, else dev).",
)


def _settings(environment: str | None) -> Settings:
    try:
        return load_settings(environment)
    except ConfigError as error:
        raise click.ClickException(str(error)) from None


@click.group()
def cli() -> None:
    """Train, inspect and serve the sentiment model."""


@cli.command()
@env_option
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Directory with the three UCI files (default: $SENTIMENT_DATA_DIR, else download).",
)
@click.option("--skip-bad-lines", is_flag=True, default=None, help="Skip malformed lines.")
@click.option("--if-missing", is_flag=True, help="Do nothing when a current model exists.")
def train(
    environment: str | None, data_dir: Path | None, skip_bad_lines: bool | None, if_missing: bool
) -> None:
    """Train, evaluate and (if it passes the quality gate) publish a model."""
    from training.train import train as run_training  # scikit-learn is slow to import

    settings = _settings(environment)
    registry = ModelRegistry(settings.model.registry_dir)
    if if_missing and registry.current_version():
        click.echo(f"model {registry.current_version()} is current; not training")
        return
    try:
        directory = resolve_data_dir(
            data_dir or settings.data_dir,
            str(settings.dataset.url),
            settings.dataset.cache_dir,
            settings.dataset.download_timeout_seconds,
        )
        result = run_training(settings, directory, skip_bad_lines)
    except (DatasetError, BundleError) as error:
        raise click.ClickException(str(error)) from None

    rows = result.dataset["rows"]
    click.echo(f"dataset: {rows} rows from {directory} (sha256 {result.dataset['sha256'][:12]})")
    if result.dataset["skipped_lines"]:
        click.echo(f"skipped {result.dataset['skipped_lines']} malformed line(s)")
    metrics = result.metrics
    click.echo(
        f"held-out: accuracy {metrics['accuracy']:.4f}  f1 {metrics['f1']:.4f}  "
        f"roc_auc {metrics['roc_auc']:.4f}  confusion {metrics['confusion_matrix']}"
    )
    if result.gate_failures:
        for failure in result.gate_failures:
            click.echo(f"quality gate failed: {failure}", err=True)
        click.echo("the model was not published", err=True)
        sys.exit(1)
    published = result.published
    click.echo(f"published model {published.version} (sha256 {published.sha256}) as current")


@cli.command()
@env_option
@click.option("--format", "output", type=click.Choice(["yaml", "json"]), default="yaml")
def config(environment: str | None, output: str) -> None:
    """Print the effective configuration of an environment."""
    document = _settings(environment).model_dump(mode="json")
    if output == "json":
        click.echo(json.dumps(document, indent=2))
    else:
        click.echo(yaml.safe_dump(document, sort_keys=False), nl=False)


@cli.command()
@env_option
def models(environment: str | None) -> None:
    """List the published model versions; * marks the current one."""
    registry = ModelRegistry(_settings(environment).model.registry_dir)
    try:
        versions = registry.versions()
    except BundleError as error:
        raise click.ClickException(str(error)) from None
    if not versions:
        click.echo(f"no models in {registry.root}")
        return
    current = registry.current_version()
    for metadata in versions:
        marker = "*" if metadata.version == current else " "
        metrics = metadata.metrics
        click.echo(
            f"{marker} {metadata.version}  accuracy {metrics['accuracy']:.4f}  "
            f"f1 {metrics['f1']:.4f}  roc_auc {metrics['roc_auc']:.4f}  "
            f"commit {metadata.git_commit[:12]}"
        )


@cli.command()
@env_option
def serve(environment: str | None) -> None:
    """Serve the API under gunicorn with the environment's settings."""
    settings = _settings(environment)  # fail here, with a clear message, on bad config
    conf = resources.files("service") / "gunicorn.conf.py"
    os.environ["APP_ENV"] = settings.environment
    argv = ["gunicorn", "--config", str(conf), "service.wsgi:app"]
    # exec: gunicorn takes over this process, so signals reach it directly.
    os.execvp(sys.executable, [sys.executable, "-m", *argv])  # noqa: S606


for _command in (*DELIVERY_COMMANDS, *PROMOTION_COMMANDS):
    cli.add_command(_command)
