"""Durable file writes: a reader sees the old content or the new, never a torn one. The
model layer writes bundles with them, the release tooling its records."""

import os
import tempfile
from pathlib import Path


def atomic_write(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Replaces `path` with `data`."""
    tmp = _durable_temporary(path, data, mode)
    try:
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def create_new(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Writes `path` atomically, only if it does not exist yet (FileExistsError otherwise).

    For append-only records: link() never replaces an existing name, unlike rename().
    """
    tmp = _durable_temporary(path, data, mode)
    try:
        os.link(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    fsync_dir(path.parent)


def _durable_temporary(path: Path, data: bytes, mode: int) -> Path:
    """`data` in a flushed temporary file beside `path`, with `mode`: mkstemp would
    leave the file 0600."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fchmod(handle.fileno(), mode)
            os.fsync(handle.fileno())
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return Path(tmp)


def write_durably(path: Path, data: bytes) -> None:
    """Writes a new file and flushes it to disk (used inside a staging directory)."""
    with open(path, "xb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


def fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
