"""gunicorn settings, all read from the environment's config (APP_ENV picks it).

gunicorn loads this module (`--config python:sentiment.serving.gunicorn_conf`) before it imports
the app, which makes it the place to claim the server's runtime directory
(sentiment/serving/runtime_dir.py). Only gunicorn imports it: importing it is what applies it.
"""

import os
import signal
import sys
import threading
from pathlib import Path

from sentiment.serving import runtime_dir
from sentiment.serving.settings import load_settings

_settings = load_settings()
_gunicorn = _settings.gunicorn

# prometheus-client picks its multiprocess mode when it is first imported, so the
# variable is set before anything imports the app. The directory starts empty: samples
# left by an earlier run would be summed into this one's.
try:
    _runtime_dir, _runtime_lock = runtime_dir.claim(_gunicorn.runtime_dir)
except (runtime_dir.RuntimeDirInUse, OSError) as error:
    sys.exit(f"Error: {error}")
os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(_runtime_dir)

from sentiment.serving.lifecycle import DRAINING  # noqa: E402  (imports the app: must follow the above)
from sentiment.serving.logs import logging_config  # noqa: E402
from sentiment.serving.rate_limit import REFUSALS_TABLE, create_table  # noqa: E402

# The rate-limit tables, one for all the workers, fresh on every start
# (sentiment/serving/rate_limit.py).
create_table(_runtime_dir)
create_table(_runtime_dir, REFUSALS_TABLE)

bind = f"{_settings.service.host}:{_settings.service.port}"

worker_class = _gunicorn.worker_class
workers = _gunicorn.workers
threads = _gunicorn.threads
# A worker silent for this long is killed and replaced.
timeout = _gunicorn.timeout_seconds
# On SIGTERM, in-flight requests get this long to finish before workers are killed.
graceful_timeout = _gunicorn.graceful_timeout_seconds
keepalive = _gunicorn.keepalive_seconds
# Load the model in the master before forking: workers share its pages copy-on-write
# and a bad bundle is reported once, at start.
preload_app = _gunicorn.preload
max_requests = _gunicorn.max_requests
max_requests_jitter = _gunicorn.max_requests_jitter

# The app writes its own JSON access line with the request id; gunicorn's would repeat it.
accesslog = None
logger_class = "sentiment.serving.logs.GunicornLogger"
logconfig_dict = logging_config(_settings.service.log_level)
# gunicorn's control socket lives under $HOME, which is read-only in the container.
control_socket_disable = True
# Worker heartbeat files: /dev/shm is memory, so a slow disk never looks like a hung worker.
worker_tmp_dir = "/dev/shm" if Path("/dev/shm").is_dir() else None  # noqa: S108


def on_starting(server) -> None:
    """The first SIGTERM drains instead of stopping: the draining mark makes /readyz answer
    503, the workers keep serving for drain_seconds, then the SIGTERM is handled as
    gunicorn does (a graceful stop). A second SIGTERM meanwhile stops at once."""
    stop = server.handle_term
    drain = _gunicorn.drain_seconds
    mark = _runtime_dir / DRAINING

    def handle_term() -> None:
        if drain <= 0 or mark.exists():
            stop()
            return
        mark.touch()
        server.log.info("SIGTERM: not ready from now on; serving %ss more, then stopping", drain)
        timer = threading.Timer(drain, server.SIG_QUEUE.put_nowait, [signal.SIGTERM])
        timer.daemon = True
        timer.start()

    server.handle_term = handle_term


def when_ready(server) -> None:
    private = " (private)" if _gunicorn.runtime_dir is None else ""
    server.log.info("runtime directory %s%s", _runtime_dir, private)


def on_exit(server) -> None:
    runtime_dir.release(_runtime_dir, _runtime_lock, private=_gunicorn.runtime_dir is None)


def child_exit(server, worker) -> None:
    """A dead (or recycled) worker's samples go into the archive files, its own go. This
    runs in the master: a failure is logged, never raised into gunicorn's loop (the
    worker's files then stay, and are still summed)."""
    from sentiment.serving.metrics import archive_dead_worker

    try:
        archive_dead_worker(_runtime_dir, worker.pid)
    except Exception:
        server.log.exception("metrics of worker %s not archived", worker.pid)
