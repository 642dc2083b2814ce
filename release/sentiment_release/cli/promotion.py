"""`sentiment gate|promote|rollback|history|evidence|pipeline|release-candidate|superseded|
state|policy`: evidence-driven promotion, as config/promotion.yaml says."""

import json
import sys
from pathlib import Path

import click

from sentiment_release.cli.options import (
    Environment,
    data_dir_option,
    environment_argument,
    image_option,
)
from sentiment_release.cli.output import (
    echo_outcome,
    echo_record,
    reports_errors,
    step_outputs,
    workspace,
)
from sentiment_release.delivery.references import digest_of
from sentiment_release.gates.summary import describe, markdown_table
from sentiment_release.promotion.policy_check import policy_problems
from sentiment_release.promotion.rules import check_ledger_below
from sentiment_release.promotion.rules import release_candidate as find_candidate
from sentiment_release.promotion.signing_step import Batch
from sentiment_release.support.errors import ReleaseError
from sentiment_release.support.provenance import run_description


@click.command()
@environment_argument
@data_dir_option
@reports_errors
def gate(environment: str, data_dir: Path | None) -> None:
    """Run the first environment's gate on the working tree and the current model.

    The other environments' gates run inside `promote`, against the image they promote.
    """
    space = workspace(data_dir)
    record = space.source_gate(environment)
    echo_record(record, space.store)
    step_outputs(unsigned=Batch({record.id: space.store.written[record.id]}).token())
    if not record.passed:
        sys.exit(1)


@click.command()
@click.option("--to", "target", type=Environment(promoted_only=True), required=True)
@image_option
@click.option("--release-tag", default=None,
              help="Where a release tag is required: the tag of the image's commit "
              "(default: the one found on the commit).")  # fmt: skip
@data_dir_option
@reports_errors
def promote(target: str, image: str | None, release_tag: str | None, data_dir: Path | None):
    """Deploy an image to TARGET and run TARGET's gate, if the environment below passed it."""
    with workspace(data_dir) as space:
        reference = space.image_reference(image)  # checked before anything starts
        outcome = space.promoter.promote(target, reference, release_tag)
        echo_outcome(outcome, space.store)
    step_outputs(unsigned=outcome.unsigned.token(), gate=outcome.entry.result)
    if not outcome.released:
        sys.exit(1)


@click.command()
@click.argument("environment", type=Environment(promoted_only=True))
@click.option("--if-gate-failed", is_flag=True,
              help="Only where ENV's policy rolls a failed gate back (on_gate_failure) and its "
              "signed ledger ends with a promotion whose gate failed; else do nothing. CI's "
              "step after the signing step of a promotion.")  # fmt: skip
@reports_errors
def rollback(environment: str, if_gate_failed: bool) -> None:
    """Redeploy ENV's previous release from the ledger and check it."""
    with workspace() as space:
        if if_gate_failed:
            outcome = space.promoter.rollback_if_gate_failed(environment)
            if outcome is None:
                click.echo(f"{environment}: no failed gate to roll back")
                return
        else:
            outcome = space.promoter.rollback(environment)
        echo_outcome(outcome, space.store)
    step_outputs(unsigned=outcome.unsigned.token(), gate=outcome.entry.result)
    if not outcome.released:
        sys.exit(1)


@click.command()
@click.argument("environment", type=Environment())
@click.option("--key-file", type=click.File("rb"), default=None,
              help="The environment's private key (PEM; - reads standard input, as CI pipes "
              "its secret). Default: this machine's pair for ENV (`make keys`).")  # fmt: skip
@click.option("--batch", default=None,
              help="What the run to sign wrote, as it printed it (its `unsigned` step output "
              "on GitHub): only that is signed. Default: ENV's unsigned ledger entries and "
              "the records they name.")  # fmt: skip
@click.option(
    "--check",
    "check_only",
    is_flag=True,
    help="Only check that the key would sign evidence that counts for ENV.",
)
@click.option("--discard", is_flag=True,
              help="Set aside what waits unsigned for ENV (it does not hold together, say), "
              "so ENV takes promotions again; kept in .delivery/pending/discarded/.")  # fmt: skip
@reports_errors
def sign(environment: str, key_file, batch: str | None, check_only: bool, discard: bool) -> None:
    """Sign what ENV's gates and promotions left unsigned, once it holds together.

    Gates and promotions never hold a key: their records and ledger entries wait
    unsigned until this, a process of its own, checks and signs them with ENV's key.
    """
    space = workspace()
    if discard:
        click.echo(space.discard_unsigned(environment))
        return
    private = key_file.read() if key_file is not None else None
    source = "--key-file" if key_file is not None else ""
    if check_only:
        signer = space.keyring.signer(environment, private, source)
        click.echo(f"{environment}: key {signer.public_key.keyid[:16]} signs evidence that counts")
        return
    given = Batch.parse(batch) if batch is not None else None
    click.echo(space.sign(environment, given, private, source).describe())


@click.command()
@environment_argument
@click.option("--json", "as_json", is_flag=True, help="Print the ledger entries as JSON.")
@reports_errors
def history(environment: str, as_json: bool) -> None:
    """ENV's promotion ledger: every promotion and rollback, oldest first."""
    entries = workspace().ledger.entries(environment)
    if as_json:
        click.echo(json.dumps([entry.model_dump(mode="json") for entry in entries], indent=2))
        return
    if not entries:
        click.echo(f"{environment}: nothing promoted yet")
        return
    click.echo(f"{'#':>3} {'AT':20} {'EVENT':9} {'RESULT':9} {'DIGEST':19} {'MODEL':26} "
               f"{'TAG':14} ACTOR")  # fmt: skip
    for entry in entries:
        event = entry.event + ("*" if entry.automatic else "")
        model = entry.model.version if entry.model else "-"
        click.echo(
            f"{entry.sequence:>3} {entry.at:%Y-%m-%dT%H:%M:%S}  {event:9} {entry.result:9} "
            f"{(entry.digest or '-')[:19]:19} {model:26} {entry.release_tag or '-':14} "
            f"{entry.actor}"
        )
    if any(entry.automatic for entry in entries):
        click.echo("* automatic, after a failed gate")


@click.command()
@image_option
@click.option("--json", "as_json", is_flag=True, help="Print the records as JSON.")
@click.option("--markdown", is_flag=True, help="Print a Markdown table (CI job summaries).")
@reports_errors
def evidence(image: str | None, as_json: bool, markdown: bool) -> None:
    """Gate evidence records that verify, oldest first (--image: only those about one
    image); then, in the plain listing, those that do not, and why."""
    space = workspace()
    records = space.store.records()
    title = "Gate evidence"
    if image:
        digest = digest_of(space.image_reference(image))
        records = [record for record in records if record.subject.digest == digest]
        title += f" for {digest[:19]}"
    if as_json:
        click.echo(json.dumps([record.model_dump(mode="json") for record in records], indent=2))
    elif markdown:
        click.echo(markdown_table(records, title), nl=False)
    else:
        for record in records:
            click.echo(f"{record.id:48} {record.environment:6} {record.result:7} "
                       f"{describe(record)}")  # fmt: skip
        for found in space.store.rejected():
            click.echo(f"NOT COUNTED {found.reason}")


@click.command()
@click.option("--until", type=Environment(promoted_only=True), default=None,
              help="The last environment to promote to (default: the last one).")  # fmt: skip
@click.option("--release-tag", default=None,
              help="The release tag where one is required (default: one on the built commit, "
              "else a local one is made).")  # fmt: skip
@data_dir_option
@click.option("--summary-file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also write the summary as Markdown here ($GITHUB_STEP_SUMMARY is appended "
              "to when set).")  # fmt: skip
@reports_errors
def pipeline(until, release_tag, data_dir, summary_file) -> None:
    """Train if needed, the first gate, build, then promote through every environment."""
    with workspace(data_dir) as space:
        report = space.pipeline().run(until, release_tag)
        click.echo(report.table())
        written = space.publish_report(report, summary_file)
        click.echo(f"summary: {written[-1]}")
        saved = space.save_state()
        branch = space.policy.state_branch
        click.echo(f"evidence and ledgers committed to branch {branch} ({saved[:12]}); "
                   "`sentiment state push` publishes them" if saved else
                   f"branch {branch} already holds this evidence")  # fmt: skip
    if not report.succeeded:
        sys.exit(1)


@click.command("release-candidate")
@click.argument("tag")
@reports_errors
def release_candidate(tag: str) -> None:
    """Print the image a release of TAG ships: one of its commit that passed the gate
    before the release environment."""
    space = workspace()
    if not space.git.is_tag_name(tag):
        raise ReleaseError(f"{tag!r} is not a tag name")
    commit = space.git.tag_commit(tag)
    if commit is None:
        raise ReleaseError(f"there is no tag {tag!r} (git fetch --tags?)")
    check_ledger_below(space.policy, space.policy.release_environment().name, space.ledger,
                       space.store)  # fmt: skip
    record = find_candidate(space.policy, commit, tag, space.store)
    click.echo(f"{tag} -> {commit[:12]}: {record.gate} evidence {record.id}", err=True)
    click.echo(record.subject.image)


@click.group()
def state() -> None:
    """Evidence and ledgers on their git branch (config/promotion.yaml state_branch)."""


@state.command("pull")
@reports_errors
def state_pull() -> None:
    """Fetch the branch and merge it into the local evidence and ledgers."""
    click.echo(workspace().state_branch.pull())


@state.command("save")
@reports_errors
def state_save() -> None:
    """Commit the local evidence and ledgers onto the local branch."""
    commit = workspace().save_state()
    click.echo(f"saved as {commit[:12]}" if commit else "nothing new to save")


@state.command("restore")
@reports_errors
def state_restore() -> None:
    """Put back the evidence and ledgers the local branch holds and the state lost."""
    click.echo(workspace().state_branch.restore())


@state.command("push")
@reports_errors
def state_push() -> None:
    """Save, merge what others pushed meanwhile, and push the branch."""
    click.echo(workspace().state_branch.push(run_description()))


@click.group()
def policy() -> None:
    """The promotion policy (config/promotion.yaml): what CI and people read from it."""


@policy.command("show")
@reports_errors
def policy_show() -> None:
    """The environments in promotion order, with their gates."""
    found = workspace().policy
    for environment in found.environments:
        extras = [
            f"port {environment.port}",
            f"GitHub environment {environment.github_environment}",
        ]
        if environment.requires_release_tag:
            extras.append(f"release tag {found.release_tag_pattern}")
        extras.append(f"failed gate: {environment.on_gate_failure}")
        click.echo(f"{environment.name}: {', '.join(extras)}")
        for check in environment.gate:
            options = json.dumps(check.options.model_dump(mode="json"))
            click.echo(f"  {check.name} ({check.kind}) {options}")


@policy.command("check")
@reports_errors
def policy_check() -> None:
    """Check that the checkout has what the policy names (config, overlays, ConfigMap)."""
    space = workspace()
    problems = policy_problems(space.policy, space.project)
    for problem in problems:
        click.echo(f"  {problem}", err=True)
    if problems:
        raise ReleaseError(f"{len(problems)} problem(s) with {space.project.policy_file}")
    click.echo(f"{space.project.policy_file}: {', '.join(space.policy.names)}: consistent")


@policy.command("github-environment")
@environment_argument
@reports_errors
def policy_github_environment(environment: str) -> None:
    """Print the GitHub environment that guards ENV's jobs."""
    click.echo(workspace().policy.environment(environment).github_environment)


@policy.command("release-environment")
@reports_errors
def policy_release_environment() -> None:
    """Print the environment a release tag takes an image to."""
    click.echo(workspace().policy.release_environment().name)


@click.command()
@environment_argument
@image_option
@reports_errors
def superseded(environment: str, image: str | None) -> None:
    """Print "true" when a newer commit's image already runs in ENV or is its release, so
    IMAGE (default: the latest build) stops here, else "false"; why, on stderr. CI's deploy
    job asks before it deploys a queued run's image."""
    with workspace() as space:
        why = space.superseded(environment, image)
    if why:
        click.echo(f"SUPERSEDED: {why}", err=True)
    click.echo("true" if why else "false")


@click.command("current-release")
@environment_argument
@reports_errors
def current_release(environment: str) -> None:
    """Print the image of ENV's current release (its ledger's), REGISTRY/NAME@sha256:...;
    exit 1 when nothing was released there. The load-test workflow runs it when the
    environment has no address of its own."""
    releases = workspace().ledger.releases(environment)
    if not releases or releases[-1].image is None:
        raise click.ClickException(f"{environment} has no release in its ledger")
    click.echo(releases[-1].image)


COMMANDS = (
    gate, promote, rollback, sign, history, evidence, pipeline, release_candidate, superseded,
    state, policy, current_release,
)  # fmt: skip
