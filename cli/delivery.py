"""`sentiment build|deploy|undeploy|status|render|registry`: the delivery commands."""

import json
import os
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from delivery.config import DeliverySettings, load_delivery_settings
from delivery.engine import Engine, detect_engine
from delivery.errors import DeliveryError
from delivery.records import Records
from delivery.references import pinned_reference
from delivery.registry_server import LocalRegistry
from settings import ENVIRONMENTS

if TYPE_CHECKING:  # kubectl is a delivery-only tool; the image's CLI never imports it
    from delivery.kubernetes import Cluster

# The directory local containers mount as /app/config, as a pod mounts its ConfigMap.
CONFIG_DIR = Path(os.environ.get("SENTIMENT_CONFIG_DIR", "config"))
environment_argument = click.argument("environment", type=click.Choice(ENVIRONMENTS))


def reports_errors(command: Callable[..., Any]) -> Callable[..., Any]:
    """DeliveryError -> its message on stderr and exit 1, never a traceback."""

    @wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except DeliveryError as error:
            raise click.ClickException(str(error)) from None

    return wrapper


def _delivery() -> DeliverySettings:
    return load_delivery_settings(CONFIG_DIR)


def _engine(delivery: DeliverySettings) -> Engine:
    return detect_engine(delivery.engine, delivery.registry.tls_verify)


def _ensure_registry(delivery: DeliverySettings) -> None:
    if delivery.registry.local_server:
        message = LocalRegistry(delivery.registry.host, delivery.state_dir).ensure_running()
        click.echo(message)


def _cluster(delivery: DeliverySettings, engine: Engine) -> "Cluster | None":
    """The Kubernetes cluster to deploy to, or None for local containers; says which."""
    if delivery.deploy.target == "local":
        click.echo(f"deploy target: local {engine.name} containers on this machine "
                   f"({delivery.deploy.container_prefix}<env>)", err=True)  # fmt: skip
        return None
    from delivery.kubernetes import Cluster
    from delivery.manifests import tool

    settings = delivery.deploy.kubernetes
    cluster = Cluster(tool(settings.kubectl), settings.rollout_timeout_seconds)
    click.echo(f"deploy target: kubernetes, context {cluster.context()} "
               "(kubectl apply -k environments/<env>)", err=True)  # fmt: skip
    return cluster


def _image_to_deploy(delivery: DeliverySettings, image: str | None) -> str:
    if image:
        return pinned_reference(image, delivery.registry)
    latest = Records(delivery.state_dir).latest_build()
    if latest is None:
        raise DeliveryError("no image has been built here: run `make build` or pass --image")
    return latest["image"]


@click.command()
@click.option("--env", "environment", type=click.Choice(ENVIRONMENTS), default=None,
              help="Config whose model registry and training settings to use.")  # fmt: skip
@click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Local UCI files, used only when a model has to be trained first.")  # fmt: skip
@click.pass_context
@reports_errors
def build(ctx: click.Context, environment: str | None, data_dir: Path | None) -> None:
    """Train if no model is current, build the image, push it, record its digest."""
    from cli.main import _settings, train
    from delivery.image import build_image
    from model_registry import ModelRegistry

    ctx.invoke(train, environment=environment, data_dir=data_dir, if_missing=True)
    delivery = _delivery()
    engine = _engine(delivery)
    _ensure_registry(delivery)
    registry = ModelRegistry(_settings(environment).model.registry_dir)
    click.echo(f"building with {engine.name} from {delivery.build.base_image} ...")
    record = build_image(engine, delivery, registry, Records(delivery.state_dir))
    budget = "" if record["size_mb"] <= record["size_budget_mb"] else " (over budget)"
    click.echo(f"image    {record['image']}")
    click.echo(f"tag      {record['tag']}")
    click.echo(f"model    {record['model']['version']} (sha256 {record['model']['sha256']})")
    click.echo(f"size     {record['size_mb']} MB, budget {record['size_budget_mb']} MB{budget}")
    click.echo(f"time     {record['seconds']}")
    for key, value in sorted(record["labels"].items()):
        click.echo(f"label    {key}={value}")


@click.command()
@click.option("--digest", "digest_only", is_flag=True, help="Print only sha256:...")
@reports_errors
def image(digest_only: bool) -> None:
    """Print the latest build's image, pinned by digest (what deploy and promote take)."""
    latest = Records(_delivery().state_dir).latest_build()
    if latest is None:
        raise DeliveryError("no image has been built here: run `make build`")
    click.echo(latest["digest"] if digest_only else latest["image"])


@click.command()
@environment_argument
@click.option("--image", default=None, help="sha256:... or REGISTRY/NAME@sha256:... "
              "(default: the latest build).")  # fmt: skip
@reports_errors
def deploy(environment: str, image: str | None) -> None:
    """Run the image as ENV, pulled by digest; wait until it is ready.

    A local container, or with deploy.target kubernetes a rollout of environments/ENV."""
    from delivery.deploy import deploy as run_deploy

    delivery = _delivery()
    reference = _image_to_deploy(delivery, image)
    engine = _engine(delivery)
    _ensure_registry(delivery)
    cluster = _cluster(delivery, engine)
    if cluster is not None:
        try:
            url = cluster.deploy(environment, reference)
            click.echo(f"{environment}: rolled out {reference}, reachable here at {url}")
        finally:
            cluster.close()
        return
    record = run_deploy(engine, delivery, Records(delivery.state_dir), environment, reference,
                        CONFIG_DIR)  # fmt: skip
    click.echo(
        f"{environment}: {record['url']} ready in {record['seconds_to_ready']}s, "
        f"model {record['model_version']}, image {record['image']}"
    )


@click.command()
@environment_argument
@reports_errors
def undeploy(environment: str) -> None:
    """Stop and remove ENV's container."""
    from delivery.deploy import undeploy as run_undeploy

    delivery = _delivery()
    removed = run_undeploy(_engine(delivery), delivery, Records(delivery.state_dir), environment)
    click.echo(f"{environment}: {'removed' if removed else 'nothing was deployed'}")


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@reports_errors
def status(as_json: bool) -> None:
    """What runs in each environment, and the ledger entry and evidence that put it there."""
    from delivery.deploy import status as read_status
    from promotion.ledger import Ledger

    delivery = _delivery()
    rows = read_status(_engine(delivery), delivery, Records(delivery.state_dir))
    ledger = Ledger(delivery.state_dir / "ledger")
    for row in rows:
        entries = ledger.entries(row["environment"])
        row["ledger"] = entries[-1] if entries else None
        row["release"] = _release_state(row["image"], row["ledger"])
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    click.echo(f"{'ENV':6} {'PORT':5} {'STATE':13} {'HEALTH':12} {'MODEL':26} {'RELEASE':30} IMAGE")
    for row in rows:
        click.echo(
            f"{row['environment']:6} {row['port']:<5} {row['state']:13} {row['health']:12} "
            f"{row['model_version'] or '-':26} {row['release']:30} {row['image'] or '-'}"
        )
    for row in rows:
        if row["ledger"] and row["ledger"].get("evidence"):
            click.echo(f"{row['environment']} evidence: {row['ledger']['evidence']}")


def _release_state(image: str | None, entry: dict[str, Any] | None) -> str:
    """How what runs relates to the ledger: its last entry, or not promoted at all."""
    if image is None:
        return f"{entry['event']} {entry['result']}" if entry else "-"
    if entry is None or entry["image"] != image:
        return "deployed without promotion"
    gate = "gate passed" if entry["result"] == "released" else "GATE FAILED"
    return f"#{entry['sequence']} {entry['event']}, {gate}"


@click.command()
@environment_argument
@click.option("--image", default=None, help="sha256:... or REGISTRY/NAME@sha256:... "
              "(default: the image deployed in ENV, else the latest build).")  # fmt: skip
@click.option("--check/--no-check", default=True, show_default=True,
              help="Check the result (pinned image, probes, ConfigMap, schema).")  # fmt: skip
@reports_errors
def render(environment: str, image: str | None, check: bool) -> None:
    """Print ENV's Kubernetes manifests (kustomize), the image pinned by digest."""
    from delivery import manifests

    delivery = _delivery()
    if image is None:
        deployed = Records(delivery.state_dir).deployment(environment)
        image = deployed["image"] if deployed else None
    reference = _image_to_deploy(delivery, image)
    rendered = manifests.render(environment, reference)
    if check:
        problems = manifests.check(environment, rendered, reference, CONFIG_DIR)
        problems += manifests.validate_schema(rendered)
        if problems:
            raise DeliveryError(
                f"the {environment} manifests fail their checks:\n  " + "\n  ".join(problems)
            )
    click.echo(rendered, nl=False)


@click.group()
def registry() -> None:
    """The local OCI registry (config/delivery.yaml registry.address)."""


@registry.command("start")
@reports_errors
def registry_start() -> None:
    """Start the local registry unless one answers already."""
    delivery = _delivery()
    click.echo(LocalRegistry(delivery.registry.host, delivery.state_dir).ensure_running())


@registry.command("stop")
@reports_errors
def registry_stop() -> None:
    """Stop the registry that `registry start` or `build` started."""
    delivery = _delivery()
    stopped = LocalRegistry(delivery.registry.host, delivery.state_dir).stop()
    click.echo("registry stopped" if stopped else "no registry started by this tool is running")


COMMANDS = (build, image, deploy, undeploy, status, render, registry)
