"""`sentiment train|models|config|serve`: the model and the service on this machine."""

import json
import os
import sys

import click
import yaml

from sentiment.serving.serve import serve as exec_service
from sentiment_release.cli.options import data_dir_option, service_env_option
from sentiment_release.cli.output import reports_errors, workspace
from sentiment_release.delivery.model_store import Unreadable

# The service reads its key hashes from where this names (auth.key_hashes_file).
KEY_HASHES_VARIABLE = "SENTIMENT_AUTH__KEY_HASHES_FILE"
MONITORING_DIR_VARIABLE = "SENTIMENT_MONITORING__DIR"


@click.command()
@service_env_option
@data_dir_option
@click.option("--skip-bad-lines", is_flag=True, default=None, help="Skip malformed lines.")
@click.option("--if-missing", is_flag=True, help="Do nothing when a current model exists.")
@reports_errors
def train(environment, data_dir, skip_bad_lines, if_missing) -> None:
    """Train, evaluate and (if it passes the quality gate) publish a model."""
    space = workspace(data_dir)
    result = space.train(environment, if_missing, skip_bad_lines)
    if result is None:
        current = space.model_folder(environment).current_version()
        click.echo(f"model {current} is current; not training")
        return
    fingerprint = result.dataset
    click.echo(f"dataset: {fingerprint['rows']} rows (sha256 {fingerprint['sha256'][:12]})")
    if fingerprint["skipped_lines"]:
        click.echo(f"skipped {fingerprint['skipped_lines']} malformed line(s)")
    metrics = result.metrics
    click.echo(
        f"held-out: accuracy {metrics['accuracy']:.4f}  f1 {metrics['f1']:.4f}  "
        f"roc_auc {metrics['roc_auc']:.4f}  confusion {metrics['confusion_matrix']}"
    )
    if result.published is None:
        for failure in result.gate_failures:
            click.echo(f"quality gate failed: {failure}", err=True)
        click.echo("the model was not published", err=True)
        sys.exit(1)
    published = result.published
    click.echo(f"published model {published.version} (sha256 {published.sha256}) as current")
    if published.compiled is not None:
        compiled = published.compiled
        click.echo(f"compiled scorer {compiled.file} (sha256 {compiled.sha256})")
    else:
        click.echo(f"no compiled scorer ({result.not_compiled}): scikit-learn will serve it")


@click.command()
@service_env_option
@click.option("--format", "output", type=click.Choice(["yaml", "json"]), default="yaml")
@reports_errors
def config(environment, output) -> None:
    """Print the effective service configuration of an environment."""
    document = workspace().service_settings(environment).model_dump(mode="json")
    if output == "json":
        click.echo(json.dumps(document, indent=2))
    else:
        click.echo(yaml.safe_dump(document, sort_keys=False), nl=False)


@click.group()
def models() -> None:
    """Model bundles: this machine's, and the model repository's (by digest)."""


def _summary(metadata) -> str:
    metrics = metadata.metrics
    return (f"accuracy {metrics['accuracy']:.4f}  f1 {metrics['f1']:.4f}  "
            f"roc_auc {metrics['roc_auc']:.4f}  dataset {metadata.dataset['sha256'][:12]}  "
            f"commit {metadata.git_commit[:12]}")  # fmt: skip


@models.command(name="list")
@service_env_option
@click.option("--remote", is_flag=True, help="List the model repository's instead.")
@reports_errors
def list_models(environment, remote) -> None:
    """The published versions; * marks the current one (--remote: the pinned one)."""
    space = workspace()
    if remote:
        space.ensure_registry()
        pinned = space.champion.digest
        stored = space.model_store.list()
        if not stored:
            click.echo(f"no models in {space.model_store.repository}")
        for model in stored:
            marker = "*" if model.digest == pinned else " "
            if isinstance(model, Unreadable):
                click.echo(f"{marker} {','.join(model.tags)}  {model.digest}  {model.problem}")
                continue
            click.echo(f"{marker} {model.metadata.version}  {model.digest}  "
                       f"{_summary(model.metadata)}")  # fmt: skip
        return
    registry = space.model_folder(environment)
    versions = registry.versions()
    if not versions:
        click.echo(f"no models in {registry.root}")
        return
    current = registry.current_version()
    for metadata in versions:
        marker = "*" if metadata.version == current else " "
        click.echo(f"{marker} {metadata.version}  {_summary(metadata)}")


@models.command()
@click.argument("version", default="current")
@click.option("--pin", is_flag=True, help="Also pin it as the champion (config/champion.yaml).")
@reports_errors
def push(version, pin) -> None:
    """Push a bundle of this machine (default: the current one) to the model repository."""
    space = workspace()
    stored = space.push_model(version)
    click.echo(f"pushed model {stored.metadata.version}: "
               f"{space.model_store.reference(stored.digest)}")  # fmt: skip
    if pin:
        _pin(space, stored.digest)


@models.command()
@click.argument("digest", required=False)
@click.option("--current", "make_current", is_flag=True, help="Make it the current model.")
@reports_errors
def pull(digest, make_current) -> None:
    """Bring a model (default: the pinned champion) into this machine's registry, every
    byte checked against its digest."""
    space = workspace()
    metadata = space.pull_model(digest, make_current)
    state = " (current)" if make_current else ""
    click.echo(f"model {metadata.version}{state}: {_summary(metadata)}")


@models.command()
@click.argument("digest")
@click.option("--challenger", is_flag=True,
              help="Pin it as the challenger images carry beside the champion ('none': no "
              "challenger).")  # fmt: skip
@reports_errors
def pin(digest, challenger) -> None:
    """Pin a model of the repository as the champion that images are built with (or, with
    --challenger, as the one soft-launched beside it)."""
    space = workspace()
    if not challenger:
        _pin(space, digest)
        return
    pinned = space.pin_challenger(None if digest == "none" else digest)
    beside = pinned.challenger
    what = f"challenger {beside.version} ({beside.digest})" if beside else "no challenger"
    click.echo(f"pinned {what} beside champion {pinned.version} in "
               f"{space.project.champion_file}: commit it")  # fmt: skip


@models.command()
@data_dir_option
@reports_errors
def champion(data_dir) -> None:
    """Make the pinned champion this machine's current model (pulled by digest); while none
    is pinned, the current model (trained if there is none)."""
    metadata, digest = workspace(data_dir).champion_model()
    where = f"champion {digest}" if digest else "no champion is pinned: this machine's model"
    click.echo(f"model {metadata.version} ({where}): {_summary(metadata)}")


def _pin(space, digest: str) -> None:
    pinned = space.pin_model(digest)
    click.echo(f"pinned {pinned.version} ({pinned.digest}) in {space.project.champion_file}: "
               "commit it, and the next build takes it")  # fmt: skip


@click.command()
@service_env_option
@reports_errors
def serve(environment) -> None:
    """Serve the API under gunicorn with the environment's settings (as the image does).
    Where they ask for API keys, the hashes are this machine's (`sentiment api-keys`)."""
    space = workspace()
    settings = space.service_settings(environment)
    if settings.auth.required and KEY_HASHES_VARIABLE not in os.environ:
        hashes = space.api_keys.hashes_file(settings.environment)
        os.environ[KEY_HASHES_VARIABLE] = str(hashes.resolve())
        name = settings.environment
        click.echo(f"{name} asks for API keys; their hashes: {hashes} "
                   f"(`sentiment api-keys create {name} NAME` makes one)", err=True)  # fmt: skip
    if MONITORING_DIR_VARIABLE not in os.environ:
        # Where a local container of the environment keeps its audit log and outcomes too.
        monitoring = space.monitoring_dir(settings.environment)
        os.environ[MONITORING_DIR_VARIABLE] = str(monitoring.resolve())
        click.echo(f"audit log and outcomes: {monitoring}", err=True)
    exec_service(environment)


@click.command()
@data_dir_option
@click.option("--publish", is_flag=True, help="Push an accepted challenger and pin it.")
@reports_errors
def retrain(data_dir, publish) -> None:
    """Train a challenger on the data and the feedback; compare it with the champion on
    the held-out split, the UAT's golden reviews and the newest feedback; keep it only if
    it is not worse beyond the configured tolerance and better somewhere by min_gain."""
    from sentiment_release.training import comparison_markdown

    retrained = workspace(data_dir).retrain(publish)
    click.echo(comparison_markdown(retrained.comparison), nl=False)
    for path in retrained.reports:
        click.echo(f"  {path}")
    comparison = retrained.comparison
    if not comparison.accepted:
        click.echo(f"challenger {comparison.challenger} REFUSED: the champion stays", err=True)
        return
    click.echo(f"challenger {comparison.challenger} accepted: this machine's current model")
    if retrained.stored is not None:
        click.echo(f"pushed {retrained.stored.digest} and pinned it: commit config/champion.yaml")


COMMANDS = (train, config, models, serve, retrain)
