"""`sentiment-serve`: the image's command, and what `sentiment serve` runs. It checks the
settings first (a bad value stops here, the key named, no traceback), then becomes
gunicorn with sentiment/serving/gunicorn_conf.py."""

import argparse
import os
import sys

from sentiment.serving.settings import ConfigError, load_settings


def serve(environment: str | None = None) -> None:
    """Execs gunicorn for `environment` (default: $APP_ENV, else dev); never returns."""
    settings = load_settings(environment)
    os.environ["APP_ENV"] = settings.environment
    argv = [
        "gunicorn",
        "--config",
        "python:sentiment.serving.gunicorn_conf",
        "sentiment.serving.wsgi:app",
    ]
    # exec: gunicorn takes over this process, so signals reach it directly.
    os.execvp(sys.executable, [sys.executable, "-m", *argv])  # noqa: S606


def main() -> None:
    parser = argparse.ArgumentParser(prog="sentiment-serve", description=__doc__)
    parser.add_argument("--env", help="the environment (default: $APP_ENV, else dev)")
    arguments = parser.parse_args()
    try:
        serve(arguments.env)
    except ConfigError as error:
        print(f"Error: {error}", file=sys.stderr)
        sys.exit(1)
