"""The server's runtime directory: the prometheus-client multiprocess files, the rate-limit
tables and the draining mark, shared by one server's master and workers and by no other
server. Unless config names one, it is a new private directory (0700) per start, removed
when the server stops. A named one (a Kubernetes emptyDir, say) is claimed with a lock
held for the server's life: a second server pointed at it refuses to start, before it
touches anything, instead of wiping the running one's state."""

import fcntl
import os
import shutil
import tempfile
from pathlib import Path
from typing import IO

LOCK_FILE = "server.lock"


class RuntimeDirInUse(Exception):
    pass


def claim(configured: Path | None) -> tuple[Path, IO[str]]:
    """The directory, emptied but for its lock, and the lock (keep it open: closing it
    frees the directory). RuntimeDirInUse when another server holds it."""
    if configured is None:
        path = Path(tempfile.mkdtemp(prefix="sentiment-"))
    else:
        path = configured.absolute()
        path.mkdir(parents=True, exist_ok=True, mode=0o700)
        path.chmod(0o700)
    lock = open(path / LOCK_FILE, "a")  # noqa: SIM115  (held for the server's life)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock.close()
        raise RuntimeDirInUse(
            f"{path} is the runtime directory of a server that is running; stop it, or "
            "give this one another (gunicorn.runtime_dir, or leave it unset for a private one)"
        ) from None
    for child in path.iterdir():
        if child.name == LOCK_FILE:
            continue
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child)
        else:
            child.unlink()
    return path, lock


def release(path: Path, lock: IO[str], private: bool) -> None:
    """At the server's stop: a private directory goes; a configured one stays, unlocked."""
    if private:
        shutil.rmtree(path, ignore_errors=True)
    lock.close()


def current() -> Path | None:
    """This server's directory, in its master and workers (gunicorn_conf.py sets it)."""
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    return Path(directory) if directory else None
