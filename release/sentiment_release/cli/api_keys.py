"""`sentiment api-keys create|rotate|revoke|list|gate|install`: the keys environments accept
where config says auth.required (config/service/)."""

import os

import click

from sentiment_release.cli.options import Environment, environment_argument
from sentiment_release.cli.output import reports_errors, workspace
from sentiment_release.delivery.api_keys import GATE_KEY_ID, ApiKeyStore
from sentiment_release.support.errors import ReleaseError

key_id_argument = click.argument("key_id", metavar="KEY_ID")
# A deploy sends the whole hash file: the machine that deploys last decides which keys work.
APPLY = (
    "it counts once {environment} is deployed from this machine; where CI deploys it, "
    "update its secret too: gh secret set API_KEY_HASHES --env <its GitHub environment> "
    "< .delivery/api-keys/{environment}/hashes"
)


def _store() -> ApiKeyStore:
    return workspace().api_keys


@click.group("api-keys")
def api_keys() -> None:
    """API keys per environment, kept here as salted hashes (<state dir>/api-keys/)."""


@api_keys.command("create")
@environment_argument
@key_id_argument
@reports_errors
def create(environment: str, key_id: str) -> None:
    """A key for a new holder KEY_ID (lower-case letters, digits, -). The key is printed
    once on stdout and kept nowhere; deploy ENVIRONMENT again for it to count."""
    key = _store().create(environment, key_id)
    click.echo(f"{environment}: key {key_id} created; {APPLY.format(environment=environment)}",
               err=True)  # fmt: skip
    click.echo(key)


@api_keys.command("rotate")
@environment_argument
@key_id_argument
@reports_errors
def rotate(environment: str, key_id: str) -> None:
    """A second key for KEY_ID, valid beside the first: hand it over, deploy, then
    `revoke --oldest` once the holder uses it."""
    key = _store().rotate(environment, key_id)
    click.echo(f"{environment}: a second key for {key_id}, both valid; "
               f"{APPLY.format(environment=environment)}", err=True)  # fmt: skip
    click.echo(key)


@api_keys.command("revoke")
@environment_argument
@key_id_argument
@click.option("--oldest", is_flag=True, help="Only KEY_ID's older key (after a rotation).")
@reports_errors
def revoke(environment: str, key_id: str, oldest: bool) -> None:
    """Removes KEY_ID's keys; they stop counting when ENVIRONMENT is deployed again."""
    removed = _store().revoke(environment, key_id, oldest)
    click.echo(f"{environment}: {removed} key(s) of {key_id} revoked; "
               f"{APPLY.format(environment=environment)}")  # fmt: skip


@api_keys.command("list")
@environment_argument
@reports_errors
def listing(environment: str) -> None:
    """The key ids ENVIRONMENT accepts and when each key was made (never a key)."""
    hashes = _store().hashes(environment)
    for item in hashes:
        click.echo(f"{item.key_id:34} created {item.created_at}")
    if not hashes:
        click.echo(f"{environment} has no API key here")


@api_keys.command("gate")
@click.argument("environments", nargs=-1, type=Environment())
@click.option("--rotate", is_flag=True, help="A second gate key replaces the gates' copy.")
@reports_errors
def gate(environments: tuple[str, ...], rotate: bool) -> None:
    """The gates' own key where auth is required (every such environment by default):
    kept when valid, else made. `make api-keys` runs this."""
    space = workspace()
    chosen = environments or tuple(
        name for name in space.policy.names if space.service_settings(name).auth.required
    )
    for environment in chosen:
        state = space.api_keys.ensure_gate_key(environment, rotate)
        path = space.api_keys.gate_key_file(environment)
        click.echo(f"{environment:10} {GATE_KEY_ID} key {state}  ({path})")


@api_keys.command("install")
@environment_argument
@reports_errors
def install(environment: str) -> None:
    """Writes ENVIRONMENT's key hashes and gate key from $API_KEY_HASHES and $GATE_API_KEY
    (a CI job's secrets), after checking that the gate key is one of the hashes. Nothing
    to do where the service asks for no keys. Never makes keys: a CI job that did would
    deploy hashes no client holds."""
    space = workspace()
    hashes, key = os.environ.get("API_KEY_HASHES", ""), os.environ.get("GATE_API_KEY", "")
    if not space.service_settings(environment).auth.required:
        click.echo(f"{environment} asks for no API keys (auth.required is false)")
        return
    if not hashes.strip() or not key.strip():
        raise ReleaseError(
            f"API_KEY_HASHES and GATE_API_KEY must both be set: {environment} requires API "
            "keys (set them as secrets of its GitHub environment)"
        )
    space.api_keys.install(environment, hashes, key)
    click.echo(f"{environment}: API key hashes and the gate key installed")


COMMANDS = (api_keys,)
