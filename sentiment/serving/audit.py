"""Audit events as JSON lines in size-bounded, rotating files, written by several worker
processes at once.

Every worker appends to the same `audit.jsonl` (O_APPEND: each write lands whole at the
end). A write takes a lock shared by the workers: under it, the worker reopens the file if
another one rotated it away, and when the next lines would take it past `max_bytes` it
first renames it to `audit.jsonl.1` (shifting the older ones, dropping the oldest beyond
`backups`), then writes. A batch that does not fit is split between lines, so no file
holds more than `max_bytes`, and no line is split across two. The one exception: a single
line longer than `max_bytes` goes alone into a fresh file (its own, over the bound; the
next line starts another). So the files hold at most (1 + backups) * max_bytes, and a
log agent tailing `audit.jsonl*` sees every line once.
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
        # The inode of the file a write stopped part-way through a line: the next append
        # ends that line first, if the file is still the live one (else the file's end does).
        self._torn: int | None = None

    def append(self, data: bytes) -> None:
        """Appends whole lines (OSError when the volume refuses them), rotating before the
        file would pass `max_bytes`. After a short write (a full volume), what was written
        is ended with a line break, now or before the next line, so that one stays whole;
        OSError is raised: the lines not written count as dropped."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self._lock_path, "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # released when the lock file closes
            start = 0
            while start < len(data):
                fd = self._open()
                size = self._end_torn_line(fd)
                room = self._max_bytes - size
                if len(data) - start <= room:
                    end = len(data)
                else:  # as many whole lines as fit
                    end = data.rfind(b"\n", start, start + max(room, 0)) + 1
                if end <= start:  # not even the next line fits
                    if size > 0:
                        self._rotate()
                        continue
                    end = data.find(b"\n", start) + 1 or len(data)  # alone in a fresh file
                self._write(fd, memoryview(data)[start:end])
                start = end

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
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o640)
        return self._fd

    def _end_torn_line(self, fd: int) -> int:
        """Ends the line a short write left open in this file; the file's size after."""
        status = os.fstat(fd)
        if self._torn is None:
            return status.st_size
        if status.st_ino == self._torn:
            os.write(fd, b"\n")
        self._torn = None
        return os.fstat(fd).st_size

    def _write(self, fd: int, chunk: memoryview) -> None:
        written = 0
        try:
            while written < len(chunk):
                count = os.write(fd, chunk[written:])
                if count <= 0:
                    raise OSError(errno.ENOSPC, f"{self.path}: nothing more was written")
                written += count
        except OSError:
            if written and chunk[written - 1] != ord("\n"):
                self._torn = os.fstat(fd).st_ino
                with contextlib.suppress(OSError):
                    os.write(fd, b"\n")
                    self._torn = None
            raise

    def _rotate(self) -> None:
        """Moves the live file aside (the caller holds the lock): audit.jsonl.1, .2, ..."""
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
