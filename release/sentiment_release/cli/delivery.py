"""`sentiment build|image|deploy|undeploy|status|render|registry|base-image`: images and
where they run."""

import json
import sys

import click

from sentiment_release.cli.options import environment_argument, image_option
from sentiment_release.cli.output import reports_errors, workspace
from sentiment_release.delivery import base_image as base_images
from sentiment_release.delivery import manifests
from sentiment_release.delivery.config import DELIVERY_FILE
from sentiment_release.delivery.errors import DeliveryError
from sentiment_release.delivery.registry_server import LocalRegistry
from sentiment_release.gates.checks.base import API_KEY_VARIABLE
from sentiment_release.promotion.status import environments_status
from sentiment_release.support.process import run
from sentiment_release.support.project import Project


@click.command()
@reports_errors
def build() -> None:
    """Build the image from the current model, push it, record its digest."""
    space = workspace()
    click.echo(f"building with {space.engine.name} from {space.delivery.build.base_image} ...")
    record = space.build()
    budget = " (over budget)" if record.over_budget else ""
    click.echo(f"image    {record.image}")
    click.echo(f"tag      {record.tag}")
    click.echo(f"model    {record.model.version} (sha256 {record.model.sha256})")
    click.echo(f"size     {record.size_mb} MB, budget {record.size_budget_mb} MB{budget}")
    click.echo(f"time     {record.seconds.model_dump()}")
    for key, value in sorted(record.labels.items()):
        click.echo(f"label    {key}={value}")


@click.command()
@click.option("--digest", "digest_only", is_flag=True, help="Print only sha256:...")
@reports_errors
def image(digest_only: bool) -> None:
    """Print the latest build's image, pinned by digest (what deploy and promote take)."""
    latest = workspace().records.latest_build()
    if latest is None:
        raise DeliveryError("no image has been built here: run `make build`")
    click.echo(latest.digest if digest_only else latest.image)


@click.command()
@environment_argument
@image_option
@reports_errors
def deploy(environment: str, image: str | None) -> None:
    """Run the image as ENV, pulled by digest, and wait until it is ready (no gate: that is
    `promote`). A local container, or with deploy.target kubernetes a rollout."""
    with workspace() as space:
        reference = space.image_reference(image)
        space.ensure_registry()
        record = space.target.deploy(environment, reference)
    click.echo(
        f"{environment}: {record.url} ready in {record.seconds_to_ready}s, "
        f"model {record.model_version}, image {record.image}"
    )


@click.command()
@environment_argument
@reports_errors
def smoke(environment: str) -> None:
    """Smoke-test what `deploy` runs here as ENV (tests/smoke against its URL); exit 1 if
    it fails. For a pull request's image, in a container of its own job: no gate, no
    evidence."""
    space = workspace()
    record = space.records.deployment(environment)
    if record is None:
        raise DeliveryError(f"nothing is deployed as {environment} here: `make deploy` first")
    key = None
    if space.service_settings(environment).auth.required:
        key = space.api_keys.gate_key(environment)
        if key is None:
            raise DeliveryError(f"{environment} asks for API keys: `make api-keys` first")
    done = run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/smoke",
         "--base-url", record.url, "--expected-environment", environment],
        cwd=space.project.root, check=False, env={API_KEY_VARIABLE: key} if key else None,
    )  # fmt: skip
    click.echo(done.output, nl=False)
    sys.exit(done.returncode)


@click.command()
@environment_argument
@reports_errors
def undeploy(environment: str) -> None:
    """Stop and remove what runs as ENV."""
    with workspace() as space:
        removed = space.target.remove(environment)
    click.echo(f"{environment}: {'removed' if removed else 'nothing was deployed'}")


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@reports_errors
def status(as_json: bool) -> None:
    """What runs in each environment, and the ledger entry and evidence that put it there."""
    with workspace() as space:
        reports = environments_status(space.policy, space.target, space.ledger, space.store)
    if as_json:
        click.echo(json.dumps([report.as_dict() for report in reports], indent=2))
        return
    click.echo(f"{'ENV':6} {'PORT':5} {'STATE':13} {'HEALTH':12} {'MODEL':26} {'RELEASE':30} IMAGE")
    for report in reports:
        found = report.found
        click.echo(
            f"{found.environment:6} {report.port:<5} {found.state:13} {found.health:12} "
            f"{found.model_version or '-':26} {report.release:30} {found.image or '-'}"
        )
    for report in reports:
        if report.ledger_problem:
            click.echo(f"{report.found.environment} ledger: {report.ledger_problem}")
        elif report.entry and report.entry.evidence:
            click.echo(f"{report.found.environment} evidence: {report.entry.evidence}")


@click.command()
@environment_argument
@click.option("--image", default=None, help="sha256:... or REGISTRY/NAME@sha256:... "
              "(default: the image deployed in ENV, else the latest build).")  # fmt: skip
@click.option("--check/--no-check", default=True, show_default=True,
              help="Check the result (pinned image, probes, ConfigMap, schema).")  # fmt: skip
@reports_errors
def render(environment: str, image: str | None, check: bool) -> None:
    """Print ENV's Kubernetes manifests (kustomize), the image pinned by digest."""
    space = workspace()
    if image is None:
        deployed = space.records.deployment(environment)
        image = deployed.image if deployed else None
    reference = space.image_reference(image)
    project = space.project
    rendered = manifests.render(project.environments_dir, environment, reference)
    if check:
        problems = manifests.check(environment, rendered, reference, project.service_config_dir)
        problems += manifests.validate_schema(rendered)
        if problems:
            raise DeliveryError(
                f"the {environment} manifests fail their checks:\n  " + "\n  ".join(problems)
            )
    click.echo(rendered, nl=False)


@click.group()
def registry() -> None:
    """The local OCI registry (config/delivery.yaml registry.address)."""


def _local_registry() -> LocalRegistry:
    delivery = workspace().delivery
    return LocalRegistry(delivery.registry.host, delivery.state_dir)


@registry.command("start")
@reports_errors
def registry_start() -> None:
    """Start the local registry unless one answers already."""
    click.echo(_local_registry().ensure_running())


@registry.command("stop")
@reports_errors
def registry_stop() -> None:
    """Stop the registry that `registry start` or `build` started."""
    stopped = _local_registry().stop()
    click.echo("registry stopped" if stopped else "no registry started by this tool is running")


@registry.command("tag-release")
@environment_argument
@reports_errors
def registry_tag_release(environment: str) -> None:
    """Tag ENV's current release in the registry (REGISTRY/NAME:vX.Y.Z on its digest), as
    the verified ledger and evidence name them. For registry.tag_releases: false."""
    with workspace() as space:
        click.echo(space.promoter.tag_current_release(environment))


@click.group("base-image")
def base_image() -> None:
    """The image the service image is built FROM (config/delivery.yaml build.base_image)."""


@base_image.command("pin")
@reports_errors
def base_image_pin() -> None:
    """Pin build.base_image to the digest its tag names in the registry now (skopeo, no
    pull), rewriting only that line of config/delivery.yaml; commit the change."""
    config_file = Project.here().config_dir / DELIVERY_FILE
    before, after = base_images.pin(config_file)
    if before == after:
        click.echo(f"{config_file}: {after} is still what its tag names")
    else:
        click.echo(f"{config_file}: base image pinned\n  was {before}\n  now {after}")


COMMANDS = (build, image, deploy, smoke, undeploy, status, render, registry, base_image)
