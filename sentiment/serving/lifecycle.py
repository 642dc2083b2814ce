"""Where the process is in its life: draining after a SIGTERM (sentiment/serving/gunicorn_conf.py
marks it), so readiness fails while requests are still served."""

from sentiment.serving import runtime_dir

# A file in the server's runtime directory, which is emptied when the server starts.
DRAINING = "draining"


def draining() -> bool:
    directory = runtime_dir.current()
    return directory is not None and (directory / DRAINING).exists()
