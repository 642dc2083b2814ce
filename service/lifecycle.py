"""Where the process is in its life: draining after a SIGTERM (service/gunicorn_conf.py
marks it), so readiness fails while requests are still served."""

import os
from pathlib import Path

# A file in the metrics directory, which gunicorn empties when it starts.
DRAINING = "draining"


def draining() -> bool:
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    return bool(directory) and (Path(directory) / DRAINING).exists()
