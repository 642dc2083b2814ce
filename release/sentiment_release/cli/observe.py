"""`sentiment audit find|drift|feedback export|alerts`: the model after release, from what its
service recorded (the environment's monitoring volume on this machine, or --dir)."""

from pathlib import Path

import click

from sentiment_release.cli.options import environment_argument
from sentiment_release.cli.output import reports_errors, workspace
from sentiment_release.observe.alerts import check_dashboard_queries, check_rules
from sentiment_release.observe.audit_log import AuditLog
from sentiment_release.observe.drift_report import drift_report, markdown, write_report
from sentiment_release.observe.feedback_data import export_feedback

directory_option = click.option(
    "--dir", "directory", type=click.Path(file_okay=False, path_type=Path), default=None,
    help="The monitoring volume (default: this machine's, .delivery/monitoring/ENV).",
)  # fmt: skip


def _directory(space, environment: str, directory: Path | None) -> Path:
    chosen = directory or space.monitoring_dir(environment)
    if not chosen.is_dir():
        raise click.ClickException(f"{chosen} does not exist: {environment} recorded nothing here")
    return chosen


@click.group()
def audit() -> None:
    """The audit log: one event per answered request."""


@audit.command()
@environment_argument
@click.argument("request_id")
@directory_option
@reports_errors
def find(environment, request_id, directory) -> None:
    """Print the audit events of REQUEST_ID (JSON lines); exit 1 when there is none."""
    import json

    log = AuditLog(_directory(workspace(), environment, directory))
    events = log.find(request_id)
    for event in events:
        click.echo(json.dumps(event, sort_keys=True))
    if not events:
        raise click.ClickException(
            f"no audit event of request id {request_id!r} in {log.directory}"
        )


@click.command()
@environment_argument
@directory_option
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Where the report goes (default: .delivery/reports/drift-ENV).")  # fmt: skip
@click.option("--window", type=click.IntRange(10, 1_000_000), default=500, show_default=True,
              help="Reviews per window in the by-window figures.")  # fmt: skip
@reports_errors
def drift(environment, directory, out, window) -> None:
    """The drift report of ENV's traffic against its models' training data."""
    space = workspace()
    log = AuditLog(_directory(space, environment, directory))
    report = drift_report(environment, log, space.model_folder(), window)
    if not report.drifts and not report.without_reference:
        raise click.ClickException(f"the audit log in {log.directory} holds no predictions")
    target = out or space.delivery.state_dir / "reports" / f"drift-{environment}"
    written = write_report(report, target)
    click.echo(markdown(report), nl=False)
    for path in written:
        click.echo(f"  {path}")


@click.group()
def feedback() -> None:
    """Feedback on predictions, recorded by POST /v1/feedback."""


@feedback.command()
@environment_argument
@directory_option
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="The file to write (sentence<TAB>label lines, as the UCI files).")  # fmt: skip
@reports_errors
def export(environment, directory, out) -> None:
    """Write the feedback whose reviews are known as training data, fingerprinted."""
    fingerprint = export_feedback(_directory(workspace(), environment, directory), out)
    rows, digest = fingerprint["rows"], fingerprint["sha256"]
    click.echo(f"{rows} labelled review(s) -> {out} (sha256 {digest}); who gave them: "
               f"{out.name}.provenance.jsonl")  # fmt: skip
    if fingerprint["conflicting"]:
        click.echo(f"{fingerprint['conflicting']} review(s) given both labels were left out")


@click.command()
@reports_errors
def alerts() -> None:
    """Check the alert rules and the dashboard (environments/components/monitoring)."""
    component = workspace().project.environments_dir / "components" / "monitoring"
    click.echo(check_rules(component), nl=False)
    click.echo(check_dashboard_queries(component), nl=False)
    click.echo(f"{component}: rules, their tests and the dashboard's queries pass")


COMMANDS = (audit, drift, feedback, alerts)
