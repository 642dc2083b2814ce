"""`sentiment keys create|show|github`: the keys that sign gate evidence (config/trust.yaml)."""

from pathlib import Path

import click

from sentiment.files import create_new
from sentiment_release.cli.options import Environment
from sentiment_release.cli.output import reports_errors, workspace
from sentiment_release.support.errors import ReleaseError
from sentiment_release.support.signing import generate_key_pair


@click.group()
def keys() -> None:
    """The keys that sign gate evidence, and the ones trusted to (config/trust.yaml)."""


@keys.command("create")
@click.argument("gates", nargs=-1, type=Environment())
@click.option("--replace", is_flag=True,
              help="New pairs even where there are some: this machine's evidence signed by "
              "the old ones stops counting.")  # fmt: skip
@reports_errors
def keys_create(gates: tuple[str, ...], replace: bool) -> None:
    """This machine's key pair per gate (every gate by default), for local pipelines.
    Existing pairs are kept unless --replace."""
    space = workspace()
    if not space.keyring.settings.local_keys:
        click.echo("this machine's keys do not count here (config/trust.yaml local_keys: "
                   "false): none made; each environment's key signs its evidence")  # fmt: skip
        return
    for gate in gates or space.policy.names:
        key_id, made = space.keyring.create_local(gate, replace)
        state = "created" if made else "kept"
        click.echo(f"{gate:10} key {key_id[:16]}  {state}  ({space.keyring.local_dir})")


@keys.command("show")
@reports_errors
def keys_show() -> None:
    """Per gate: the keys whose signature counts, and what would sign here."""
    space = workspace()
    for gate in space.policy.names:
        trusted = space.keyring.trusted(gate)
        for key_id, found in trusted.items():
            click.echo(f"{gate:10} trusts {key_id[:16]}  {found.source}")
        if not trusted:
            click.echo(f"{gate:10} trusts no key: its evidence never counts here")
        try:
            space.keyring.check_local(gate)
            click.echo(f"{gate:10} signs with this machine's pair ({space.keyring.local_dir})")
        except ReleaseError as error:
            click.echo(f"{gate:10} cannot sign here: {error}")


@keys.command("github")
@click.argument("gate", type=Environment())
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="Where the public key goes: config/keys/<name>.pub (a new file).")  # fmt: skip
@reports_errors
def keys_github(gate: str, out: Path) -> None:
    """A key pair for GATE's GitHub environment. The public half is written to --out, to
    commit and list under GATE in config/trust.yaml; the private half is printed once on
    stdout, for `gh secret set EVIDENCE_SIGNING_KEY --env GATE`, and kept nowhere."""
    keys_dir = (workspace().project.config_dir / "keys").resolve()
    if out.resolve().parent != keys_dir or out.suffix != ".pub":
        raise ReleaseError(f"--out must be a .pub file directly in {keys_dir}")
    pair = generate_key_pair()
    try:
        create_new(out, pair.public_pem)
    except FileExistsError:
        raise ReleaseError(f"{out} exists already; keys are never overwritten") from None
    click.echo(
        f"wrote {out} (key {pair.key_id[:16]}): add keys/{out.name} under gates.{gate} in "
        f"config/trust.yaml and commit both; the private key follows on stdout",
        err=True,
    )
    click.echo(pair.private_pem.decode("ascii"), nl=False)


COMMANDS = (keys,)
