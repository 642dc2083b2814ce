"""`sentiment gate|promote|rollback|history|evidence|pipeline`: evidence-driven promotion."""

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from cli.delivery import (
    CONFIG_DIR,
    _cluster,
    _delivery,
    _engine,
    _ensure_registry,
    _image_to_deploy,
    environment_argument,
    reports_errors,
)
from delivery.config import DeliverySettings
from delivery.records import Records

if TYPE_CHECKING:  # the image's `sentiment serve` must not need the delivery-only packages
    from gates.evidence import EvidenceStore
    from promotion.ledger import Ledger
    from promotion.promote import Outcome, Promoter
    from promotion.state_branch import StateBranch

data_dir_option = click.option(
    "--data-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
    help="Local UCI files, for the stage gate's skew check (default: $SENTIMENT_DATA_DIR, "
    "else download).",
)  # fmt: skip
PROMOTED = ("test", "stage", "prod")


def _store(delivery: DeliverySettings) -> "EvidenceStore":
    from gates.evidence import EvidenceStore

    return EvidenceStore(delivery.state_dir / "evidence")


def _ledger(delivery: DeliverySettings) -> "Ledger":
    from promotion.ledger import Ledger

    return Ledger(delivery.state_dir / "ledger")


@contextmanager
def _promoter(delivery: DeliverySettings, data_dir: Path | None) -> Iterator["Promoter"]:
    """A Promoter for config's deploy target, which it names in the log first."""
    from delivery import source
    from gates.runner import GateContext
    from promotion.promote import Promoter
    from promotion.stages import KubernetesStages, LocalStages

    engine = _engine(delivery)
    _ensure_registry(delivery)
    gates = GateContext(_store(delivery), CONFIG_DIR, data_dir)
    records = Records(delivery.state_dir)
    cluster = _cluster(delivery, engine)
    stages = (
        LocalStages(engine, delivery, records, gates, CONFIG_DIR)
        if cluster is None
        else KubernetesStages(engine, delivery, records, gates, CONFIG_DIR, cluster)
    )
    pattern = delivery.promotion.release_tag_pattern
    try:
        yield Promoter(
            stages=stages,
            store=gates.store,
            ledger=_ledger(delivery),
            lock_timeout_seconds=delivery.promotion.lock_timeout_seconds,
            release_tag_pattern=pattern,
            tags_on=lambda commit: source.release_tags(commit, pattern),
            commit_of=source.tag_commit,
            log=lambda message: click.echo(message, err=True),
        )
    finally:
        stages.close()


def echo_record(record: dict[str, Any], store: "EvidenceStore") -> None:
    from gates.evidence import describe

    click.echo(f"{record['gate']} gate {record['result'].upper()} in {record['seconds']}s: "
               f"{describe(record)}")  # fmt: skip
    for failure in record["failures"]:
        click.echo(f"  failed: {failure}", err=True)
    click.echo(f"  evidence {store.root / record['id']}.json")
    click.echo(f"  reports  {store.root / record['reports_dir']}")


def echo_outcome(outcome: "Outcome", store: "EvidenceStore") -> None:
    entry = outcome.entry
    if outcome.evidence:
        echo_record(outcome.evidence, store)
    release = f", release {entry['release_tag']}" if entry.get("release_tag") else ""
    click.echo(
        f"{entry['environment']}: {entry['event']} #{entry['sequence']} {entry['result']}{release}"
    )
    if outcome.rollback:
        click.echo("automatic rollback:")
        echo_outcome(outcome.rollback, store)


@click.command()
@click.argument("environment", type=click.Choice(["dev"]))
@reports_errors
def gate(environment: str) -> None:
    """Run the dev gate: lint, unit tests, the quality gate of the current model.

    The other gates run inside `promote`, against the image they promote.
    """
    from gates.runner import GateContext, run_dev_gate

    store = _store(_delivery())
    record = run_dev_gate(GateContext(store, CONFIG_DIR))
    echo_record(record, store)
    if record["result"] != "passed":
        raise SystemExit(1)


@click.command()
@click.option("--to", "target", type=click.Choice(PROMOTED), required=True)
@click.option("--image", default=None, help="sha256:... or REGISTRY/NAME@sha256:... "
              "(default: the latest build).")  # fmt: skip
@click.option("--release-tag", default=None,
              help="prod: the release tag of the image's commit "
              "(default: the one found on the commit).")  # fmt: skip
@data_dir_option
@reports_errors
def promote(target: str, image: str | None, release_tag: str | None, data_dir: Path | None) -> None:
    """Deploy an image to TARGET and run TARGET's gate, if the environment below passed it."""
    delivery = _delivery()
    reference = _image_to_deploy(delivery, image)
    with _promoter(delivery, data_dir) as promoter:
        outcome = promoter.promote(target, reference, release_tag)
    echo_outcome(outcome, _store(delivery))
    if not outcome.released:
        raise SystemExit(1)


@click.command()
@environment_argument
@reports_errors
def rollback(environment: str) -> None:
    """Redeploy ENV's previous release from the ledger and smoke-check it."""
    delivery = _delivery()
    with _promoter(delivery, None) as promoter:
        outcome = promoter.rollback(environment)
    echo_outcome(outcome, _store(delivery))
    if not outcome.released:
        raise SystemExit(1)


@click.command()
@environment_argument
@click.option("--json", "as_json", is_flag=True, help="Print the ledger entries as JSON.")
@reports_errors
def history(environment: str, as_json: bool) -> None:
    """ENV's promotion ledger: every promotion and rollback, oldest first."""
    entries = _ledger(_delivery()).entries(environment)
    if as_json:
        click.echo(json.dumps(entries, indent=2))
        return
    if not entries:
        click.echo(f"{environment}: nothing promoted yet")
        return
    click.echo(f"{'#':>3} {'AT':20} {'EVENT':9} {'RESULT':9} {'DIGEST':19} {'MODEL':26} "
               f"{'TAG':14} ACTOR")  # fmt: skip
    for entry in entries:
        event = entry["event"] + ("*" if entry.get("automatic") else "")
        model = (entry.get("model") or {}).get("version") or "-"
        click.echo(
            f"{entry['sequence']:>3} {entry['at'][:19]:20} {event:9} {entry['result']:9} "
            f"{(entry['digest'] or '-')[:19]:19} {model:26} {entry.get('release_tag') or '-':14} "
            f"{entry['actor']}"
        )
    if any(entry.get("automatic") for entry in entries):
        click.echo("* automatic, after a failed gate")


@click.command()
@click.option("--image", default=None, help="Only records about this digest.")
@click.option("--json", "as_json", is_flag=True, help="Print the records as JSON.")
@click.option("--markdown", is_flag=True, help="Print a Markdown table (CI job summaries).")
@reports_errors
def evidence(image: str | None, as_json: bool, markdown: bool) -> None:
    """Gate evidence records, oldest first."""
    from delivery.references import digest_of, pinned_reference
    from gates.evidence import describe, markdown_table

    delivery = _delivery()
    records = _store(delivery).records()
    title = "Gate evidence"
    if image:
        digest = digest_of(pinned_reference(image, delivery.registry))
        records = [r for r in records if r["subject"].get("digest") == digest]
        title += f" for {digest[:19]}"
    if as_json:
        click.echo(json.dumps(records, indent=2))
        return
    if markdown:
        click.echo(markdown_table(records, title), nl=False)
        return
    for record in records:
        click.echo(f"{record['id']:48} {record['environment']:6} {record['result']:7} "
                   f"{describe(record)}")  # fmt: skip


@click.command()
@click.option("--until", type=click.Choice(PROMOTED), default="prod", show_default=True,
              help="The last environment to promote to.")  # fmt: skip
@click.option("--release-tag", default=None,
              help="prod's release tag (default: one on the built commit, "
              "else a local one is made).")  # fmt: skip
@data_dir_option
@click.option("--summary-file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also write the summary as Markdown here ($GITHUB_STEP_SUMMARY is appended "
              "to when set).")  # fmt: skip
@click.pass_context
@reports_errors
def pipeline(
    ctx: click.Context,
    until: str,
    release_tag: str | None,
    data_dir: Path | None,
    summary_file: Path | None,
) -> None:
    """dev gate -> build -> test -> stage -> prod, as CI runs them; a summary at the end."""
    from promotion.pipeline import markdown, run_steps, succeeded, table

    delivery = _delivery()
    steps = _pipeline_steps(ctx, delivery, until, release_tag, data_dir)
    results = run_steps(steps, lambda line: click.echo(line, err=True))
    click.echo(table(results))
    document = markdown(results, "Pipeline")
    targets = [delivery.state_dir / "pipeline-summary.md"]
    if summary_file:
        targets.append(summary_file)
    for target in targets:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(document, encoding="utf-8")
    if os.environ.get("GITHUB_STEP_SUMMARY"):
        with open(os.environ["GITHUB_STEP_SUMMARY"], "a", encoding="utf-8") as handle:
            handle.write(document)
    click.echo(f"summary: {targets[-1]}")
    saved = _state_branch(delivery).save(_state_message())
    branch = delivery.promotion.state_branch
    click.echo(f"evidence and ledgers committed to branch {branch} ({saved[:12]}); "
               "`sentiment state push` publishes them" if saved else
               f"branch {branch} already holds this evidence")  # fmt: skip
    if not succeeded(results):
        raise SystemExit(1)


def _pipeline_steps(
    ctx: click.Context,
    delivery: DeliverySettings,
    until: str,
    release_tag: str | None,
    data_dir: Path | None,
) -> list:
    """The pipeline's steps: the same library calls as the separate commands."""
    from cli.delivery import build
    from cli.main import _settings, train
    from delivery import source
    from gates.evidence import describe
    from gates.runner import GateContext, run_dev_gate
    from model_registry import ModelRegistry
    from promotion.pipeline import StepOutcome

    store = _store(delivery)
    records = Records(delivery.state_dir)
    built: dict[str, Any] = {}

    def invoked(command: click.Command, **options: Any) -> str | None:
        """Runs a command of this CLI; its failure message, or None when it succeeded."""
        try:
            ctx.invoke(command, **options)
        except click.ClickException as error:
            return error.format_message()
        except SystemExit as error:
            if error.code:
                return f"{command.name} exited {error.code}"
        return None

    def train_step() -> StepOutcome:
        failure = invoked(train, environment=None, data_dir=data_dir, skip_bad_lines=None,
                          if_missing=True)  # fmt: skip
        if failure:
            return StepOutcome(False, "", failure)
        metadata = ModelRegistry(_settings(None).model.registry_dir).load("current").metadata
        metrics = metadata.metrics
        return StepOutcome(True, f"model {metadata.version}, accuracy {metrics['accuracy']:.3f}")

    def dev_gate_step() -> StepOutcome:
        record = run_dev_gate(GateContext(store, CONFIG_DIR))
        return StepOutcome(record["result"] == "passed", describe(record),
                           "\n".join(record["failures"]))  # fmt: skip

    def build_step() -> StepOutcome:
        failure = invoked(build, environment=None, data_dir=data_dir)
        if failure:
            return StepOutcome(False, "", failure)
        record = records.latest_build()
        built.update(record)
        return StepOutcome(True, f"{record['digest'][:19]}..., {record['size_mb']} MB, "
                                 f"{record['seconds']['total']} s")  # fmt: skip

    def promote_step(target: str) -> StepOutcome:
        tag = release_tag
        if target == "prod" and tag is None and not built["git_dirty"]:
            pattern = delivery.promotion.release_tag_pattern
            if not source.release_tags(built["git_commit"], pattern):
                tag = f"v{built['version']}-local.{built['git_commit'][:12]}"
                source.create_tag(tag, built["git_commit"])
                click.echo(f"tagged {built['git_commit'][:12]} as {tag} (a local release tag)",
                           err=True)  # fmt: skip
        with _promoter(delivery, data_dir) as promoter:
            outcome = promoter.promote(target, built["image"], tag)
        echo_outcome(outcome, store)
        summary = describe(outcome.evidence) if outcome.evidence else ""
        if outcome.entry.get("release_tag"):
            summary = f"{outcome.entry['release_tag']}; {summary}"
        if outcome.rollback:
            summary += f"; rolled back: {outcome.rollback.entry['result']}"
        failures = outcome.evidence["failures"] if outcome.evidence else []
        return StepOutcome(outcome.released, summary, "\n".join(failures))

    steps = [("train", train_step), ("dev gate", dev_gate_step), ("build", build_step)]
    for target in PROMOTED[: PROMOTED.index(until) + 1]:
        steps.append((target, lambda target=target: promote_step(target)))
    return steps


@click.command("release-candidate")
@click.argument("tag")
@reports_errors
def release_candidate(tag: str) -> None:
    """Print the image a release of TAG ships: one of its commit that passed stage."""
    from delivery import source
    from promotion.rules import release_candidate as find_candidate

    delivery = _delivery()
    commit = source.tag_commit(tag)
    if commit is None:
        raise click.ClickException(f"there is no tag {tag!r} (git fetch --tags?)")
    record = find_candidate(commit, tag, _store(delivery))
    click.echo(f"{tag} -> {commit[:12]}: stage evidence {record['id']}", err=True)
    click.echo(record["subject"]["image"])


@click.group()
def state() -> None:
    """Evidence and ledgers on their git branch (config/delivery.yaml promotion)."""


def _state_branch(delivery: DeliverySettings) -> "StateBranch":
    from delivery.source import ROOT
    from promotion.state_branch import StateBranch

    promotion = delivery.promotion
    return StateBranch(ROOT, delivery.state_dir, promotion.state_branch, promotion.state_remote)


@state.command("pull")
@reports_errors
def state_pull() -> None:
    """Fetch the branch and merge it into the local evidence and ledgers."""
    click.echo(_state_branch(_delivery()).pull())


@state.command("save")
@reports_errors
def state_save() -> None:
    """Commit the local evidence and ledgers onto the local branch."""
    commit = _state_branch(_delivery()).save(_state_message())
    click.echo(f"saved as {commit[:12]}" if commit else "nothing new to save")


@state.command("push")
@reports_errors
def state_push() -> None:
    """Save, merge what others pushed meanwhile, and push the branch."""
    click.echo(_state_branch(_delivery()).push(_state_message()))


def _state_message() -> str:
    from gates.runner import actor

    run = os.environ.get("GITHUB_RUN_ID")
    where = f", {os.environ.get('GITHUB_WORKFLOW', 'workflow')} run {run}" if run else ""
    return f"Delivery state from {actor()}{where}"


COMMANDS = (gate, promote, rollback, history, evidence, pipeline, release_candidate, state)
