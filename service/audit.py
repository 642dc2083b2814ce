"""Audit events as JSON lines in size-bounded, rotating files, written by several worker
processes at once.

Every worker appends to the same `audit.jsonl` (O_APPEND: each write lands whole at the
end, whoever else writes). When it has grown past `max_bytes`, the first worker to see it
takes a lock and renames it to `audit.jsonl.1` (shifting the older ones, dropping the
oldest beyond `backups`); every worker notices the rename (the path names another file)
and reopens. So the files hold at most about (1 + backups) * max_bytes, and a log agent
tailing `audit.jsonl*` sees every line once.
"""

import contextlib
import errno
import fcntl
import os
from pathlib import Path

AUDIT_FILE = "audit.jsonl"
LOCK_FILE = ".audit.lock"


class AuditFile:
    def __init__(self, directory: Path, max_bytes: int, backups: int):
        self.path = directory / AUDIT_FILE
        self._lock_path = directory / LOCK_FILE
        self._max_bytes = max_bytes
        self._backups = backups
        self._fd: int | None = None
        # A write stopped part-way through a line: the next append ends it first.
        self._torn = False

    def append(self, data: bytes) -> None:
        """Appends whole lines (OSError when the volume refuses them). After a short write
        (a full volume), what was written is ended with a line break, now or before the
        next line, so that one stays whole; OSError is raised: the lines count as dropped."""
        fd = self._open()
        if self._torn:
            os.write(fd, b"\n")
            self._torn = False
        written = 0
        try:
            while written < len(data):
                count = os.write(fd, data[written:])
                if count <= 0:
                    raise OSError(errno.ENOSPC, f"{self.path}: nothing more was written")
                written += count
        except OSError:
            if written and data[written - 1 : written] != b"\n":
                self._torn = True
                with contextlib.suppress(OSError):
                    os.write(fd, b"\n")
                    self._torn = False
            raise
        if os.fstat(fd).st_size >= self._max_bytes:
            self._rotate(fd)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def _open(self) -> int:
        """The live file's descriptor; reopened when another worker rotated it away."""
        if self._fd is not None:
            try:
                if os.stat(self.path).st_ino == os.fstat(self._fd).st_ino:
                    return self._fd
            except FileNotFoundError:
                pass
            self.close()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o640)
        return self._fd

    def _rotate(self, fd: int) -> None:
        with open(self._lock_path, "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                current = os.stat(self.path)
            except FileNotFoundError:
                return
            # Another worker may have rotated it between our write and the lock.
            if current.st_ino != os.fstat(fd).st_ino or current.st_size < self._max_bytes:
                return
            if self._backups == 0:
                os.truncate(self.path, 0)
                return
            for number in range(self._backups - 1, 0, -1):
                older = self.path.with_name(f"{AUDIT_FILE}.{number}")
                if older.exists():
                    older.rename(self.path.with_name(f"{AUDIT_FILE}.{number + 1}"))
            self.path.rename(self.path.with_name(f"{AUDIT_FILE}.1"))
        self.close()


def audit_files(directory: Path) -> list[Path]:
    """The audit files, oldest first (audit.jsonl.N ... audit.jsonl.1, audit.jsonl)."""
    rotated = []
    for path in directory.glob(f"{AUDIT_FILE}.*"):
        suffix = path.name.rsplit(".", 1)[1]
        if suffix.isdigit():
            rotated.append((int(suffix), path))
    live = [directory / AUDIT_FILE] if (directory / AUDIT_FILE).exists() else []
    return [path for _, path in sorted(rotated, reverse=True)] + live
