"""Reading files an attacker may have placed: regular files only, within a size."""

import os
import stat
from pathlib import Path


def read_regular_file(path: Path, limit: int = 64 * 1024 * 1024) -> bytes:
    """The bytes of `path` if it is a regular file with one name, opened without following
    a link (OSError otherwise): for files in folders something less trusted can write, so
    a link there never makes this process read, or a link count never hides, another file."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_nlink != 1:
            raise OSError(f"{path} is not a regular file with one name")
        with os.fdopen(os.dup(fd), "rb") as handle:
            return handle.read(limit)
    finally:
        os.close(fd)
