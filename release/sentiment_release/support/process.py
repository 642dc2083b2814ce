"""Every external command the release tooling runs goes through here: an argument list,
never a shell; a timeout; and a failure that names the command and says why."""

import os
import shlex
import shutil
import stat
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, BinaryIO

from sentiment_release.support.errors import ReleaseError
from sentiment_release.support.files import read_regular_file

DEFAULT_TIMEOUT_SECONDS = 600
# How much of a failed command's output an error message quotes.
ERROR_TAIL_CHARS = 2000


class CommandError(ReleaseError):
    """A command could not run, ran too long, or exited non-zero (when that is an error)."""


@dataclass(frozen=True)
class Finished:
    argv: tuple[str, ...]
    returncode: int
    stdout: Any  # str, or bytes when run with text=False
    stderr: Any

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    @property
    def output(self) -> str:
        """stderr, else stdout, as text: what explains a failure."""
        for stream in (self.stderr, self.stdout):
            text = stream.decode(errors="replace") if isinstance(stream, bytes) else stream
            if text and text.strip():
                return text.strip()
        return f"exit {self.returncode}"


def find_tool(name: str) -> str | None:
    """A tool installed beside the Python running this (its virtualenv), else on PATH."""
    beside = Path(sys.executable).parent / name
    return str(beside) if beside.exists() else shutil.which(name)


def tool(name: str) -> str:
    """find_tool, or the bare name: running it then says it is not installed."""
    return find_tool(name) or name


def describe(argv: Sequence[str], words: int = 4) -> str:
    """`cmd arg ...`, short enough for a message; arguments are quoted as a shell would."""
    shown = " ".join(shlex.quote(str(part)) for part in argv[:words])
    return f"`{shown}{' ...' if len(argv) > words else ''}`"


def _environment(env: Mapping[str, str] | None, inherit: bool = True) -> dict[str, str] | None:
    if not inherit:
        return dict(env or {})
    return None if env is None else {**os.environ, **env}


def run(
    argv: Sequence[str | os.PathLike[str]],
    *,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    input: str | bytes | None = None,
    timeout: float | None = DEFAULT_TIMEOUT_SECONDS,
    check: bool = True,
    text: bool = True,
) -> Finished:
    """Runs `argv` to completion and captures its output. `env` adds to this process's
    environment. With check, a non-zero exit is a CommandError quoting its output."""
    command = tuple(str(part) for part in argv)
    try:
        done = subprocess.run(  # noqa: S603  (an argument list, no shell)
            command, cwd=cwd, env=_environment(env), input=input, capture_output=True,
            text=text, timeout=timeout, check=False,
        )  # fmt: skip
    except FileNotFoundError:
        raise CommandError(
            f"{describe(command)} cannot run: {command[0]} is not installed"
        ) from None
    except OSError as error:
        raise CommandError(f"{describe(command)} cannot run: {error}") from None
    except subprocess.TimeoutExpired:
        raise CommandError(f"{describe(command)} took over {timeout:g}s and was stopped") from None
    finished = Finished(command, done.returncode, done.stdout, done.stderr)
    if check and not finished.ok:
        raise CommandError(f"{describe(command)} failed: {finished.output[-ERROR_TAIL_CHARS:]}")
    return finished


def run_logged(
    argv: Sequence[str | os.PathLike[str]],
    log: Path,
    *,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float | None = DEFAULT_TIMEOUT_SECONDS,
    inherit_environment: bool = True,
) -> int | None:
    """Runs `argv` with its output appended to `log`; its exit code, None if it timed out
    (it is then stopped), 127 if it could not start (the reason is in the log). `env`
    adds to this process's environment, or is all of it without `inherit_environment`."""
    command = [str(part) for part in argv]
    with open_log(log) as output:
        output.write(f"$ {shlex.join(command)}\n".encode())
        output.flush()
        try:
            return subprocess.run(  # noqa: S603  (an argument list, no shell)
                command, cwd=cwd, env=_environment(env, inherit_environment), stdout=output,
                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, timeout=timeout, check=False,
            ).returncode  # fmt: skip
        except subprocess.TimeoutExpired:
            output.write(f"\nstopped after {timeout:g}s\n".encode())
            return None
        except OSError as error:
            output.write(f"cannot run: {error}\n".encode())
            return 127


def open_log(log: Path) -> BinaryIO:
    """`log` opened to append, never through a link and only as a file with one name: a
    check may write in the folder its log is in, and must not make this process write
    into another file."""
    fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW, 0o644)
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode) or info.st_nlink != 1:
        os.close(fd)
        raise OSError(f"{log} is not a file of its own")
    return os.fdopen(fd, "ab")


def tail(log: Path, lines: int = 15) -> str:
    """The last lines of a log (never through a link: see read_regular_file)."""
    try:
        text = read_regular_file(log).decode(errors="replace")
    except OSError as error:
        return f"(its log cannot be read: {error})"
    return "\n".join(text.splitlines()[-lines:])


def start(
    argv: Sequence[str | os.PathLike[str]],
    *,
    stdout: IO[Any] | int | None = subprocess.PIPE,
    detached: bool = False,
    env: Mapping[str, str] | None = None,
) -> subprocess.Popen:
    """Starts a background process (a server, a port-forward). detached: it gets its own
    session, so it outlives this command as a daemon would. `env` adds to this process's
    environment."""
    command = [str(part) for part in argv]
    try:
        return subprocess.Popen(  # noqa: S603  (an argument list, no shell)
            command, stdin=subprocess.DEVNULL, stdout=stdout, stderr=subprocess.STDOUT,
            text=stdout is subprocess.PIPE, start_new_session=detached, env=_environment(env),
        )  # fmt: skip
    except OSError as error:
        raise CommandError(f"{describe(command)} cannot start: {error}") from None


def stop(process: subprocess.Popen, grace_seconds: float = 10) -> None:
    """SIGTERM, then SIGKILL if it has not exited within the grace period."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=grace_seconds)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
