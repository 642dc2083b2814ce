"""Who and what is running this, for the records that evidence and ledgers keep."""

import getpass
import os
import socket


def actor() -> str:
    """The CI actor when there is one, else user@host."""
    if os.environ.get("GITHUB_ACTOR"):
        return f"{os.environ['GITHUB_ACTOR']} (GitHub Actions)"
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return f"{user}@{socket.gethostname()}"


def ci_run_url() -> str | None:
    """The GitHub Actions run whose artifacts hold this run's reports, if any."""
    parts = [os.environ.get(name) for name in ("GITHUB_SERVER_URL", "GITHUB_REPOSITORY")]
    run = os.environ.get("GITHUB_RUN_ID")
    if not (all(parts) and run):
        return None
    return f"{parts[0]}/{parts[1]}/actions/runs/{run}"


def run_description() -> str:
    """Who made a change to the evidence branch, and in which CI run."""
    run = os.environ.get("GITHUB_RUN_ID")
    where = f", {os.environ.get('GITHUB_WORKFLOW', 'workflow')} run {run}" if run else ""
    return f"Delivery state from {actor()}{where}"
