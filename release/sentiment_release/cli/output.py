"""What every command shares: the workspace it works in, errors as messages (never a
traceback), and how records are printed."""

import os
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Any

import click

from sentiment.model import BundleError
from sentiment.serving.settings import ConfigError
from sentiment_release.cli.workspace import Workspace
from sentiment_release.gates.evidence import EvidenceRecord
from sentiment_release.gates.evidence_store import EvidenceStore
from sentiment_release.gates.summary import describe
from sentiment_release.promotion.promote import Outcome
from sentiment_release.support.errors import ReleaseError
from sentiment_release.support.project import Project


def log(message: str) -> None:
    click.echo(message, err=True)


def workspace(data_dir: Path | None = None) -> Workspace:
    """The checkout this command runs in (the working directory, as with make)."""
    return Workspace(Project.here(), log=log, data_dir=data_dir)


def step_outputs(**values: str) -> None:
    """On GitHub, the step's outputs (appended to $GITHUB_OUTPUT): how a step hands the
    signing step what it wrote. A value is one line."""
    path = os.environ.get("GITHUB_OUTPUT")
    if not path:
        return
    with open(path, "a", encoding="utf-8") as handle:
        for name, value in values.items():
            handle.write(f"{name}={value.replace(chr(10), ' ')}\n")


def reports_errors(command: Callable[..., Any]) -> Callable[..., Any]:
    """A failure the user can act on -> its message on stderr and exit 1."""

    @wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except (ReleaseError, ConfigError, BundleError) as error:
            raise click.ClickException(str(error)) from None

    return wrapper


def echo_record(record: EvidenceRecord, store: EvidenceStore) -> None:
    click.echo(f"{record.gate} gate {record.result.upper()} in {record.seconds}s: "
               f"{describe(record)}")  # fmt: skip
    for failure in record.failures:
        click.echo(f"  failed: {failure}", err=True)
    click.echo(f"  evidence {store.root / record.id}.json")
    click.echo(f"  reports  {store.root / record.reports_dir}")


def echo_outcome(outcome: Outcome, store: EvidenceStore) -> None:
    entry = outcome.entry
    if outcome.evidence:
        echo_record(outcome.evidence, store)
    release = f", release {entry.release_tag}" if entry.release_tag else ""
    click.echo(f"{entry.environment}: {entry.event} #{entry.sequence} {entry.result}{release}")
    if outcome.rollback:
        click.echo("automatic rollback:")
        echo_outcome(outcome.rollback, store)
    if outcome.rollback_refused:
        click.echo(f"NO AUTOMATIC ROLLBACK: {outcome.rollback_refused}", err=True)
    if outcome.registry_tag:
        click.echo(f"registry tag: {outcome.registry_tag}")
    if outcome.registry_tag_error:
        click.echo(f"NOT TAGGED IN THE REGISTRY: {outcome.registry_tag_error}", err=True)
