"""Where a check's processes run: pytest, ruff, locust and every package they import are
code a gate does not trust with its keys or its state. They run in a bubblewrap sandbox,
here and on GitHub alike:

    the file system read-only, but for a scratch directory of their own (their $HOME and
    $TMPDIR, emptied after them) and the run's reports directory;
    /tmp, /var/tmp, /run (the Docker, Podman and D-Bus sockets) and the user's home (SSH,
    Docker, kube and gh credentials) covered by empty ones, then the checkout and Python
    shown again, read-only;
    the directories with private keys and API keys covered by empty ones;
    a PID namespace of their own with its own /proc (no /proc/<gate's pid>/environ or
    /root way around the covers); a minimal /dev; no capabilities, even as root, and no
    new ones (setuid programs, sudo); killed with the gate;
    an environment made of the variables config/trust.yaml allows (check_environment),
    never a key or a token.

Read-only also means a check cannot leave code behind for the signing step that follows
it, nor write the evidence, ledgers and unsigned records it is judged by. A check shares
the machine's network (it tests a service on a local port), so a socket in the abstract
namespace stays reachable.
"""

import fnmatch
import os
import shutil
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from sentiment_release.support.errors import ReleaseError
from sentiment_release.support.process import run

BWRAP = "bwrap"
# The GitHub environments' secret holding their signing key (fed to `sentiment sign`).
SIGNING_KEY_VARIABLE = "EVIDENCE_SIGNING_KEY"
# Variables no check ever sees, whatever the allow-list says: signing keys and tokens.
NEVER = (
    SIGNING_KEY_VARIABLE,
    "GIT_TOKEN",
    "GITHUB_TOKEN",
    "GH_TOKEN",
    "REGISTRY_TOKEN",
    "ACTIONS_ID_TOKEN_REQUEST_TOKEN",
    "ACTIONS_ID_TOKEN_REQUEST_URL",
    "ACTIONS_RUNTIME_TOKEN",
    "API_KEY_HASHES",
    "GATE_API_KEY",
    "KUBECONFIG",
    "KUBECONFIG_DATA",
    "SSH_AUTH_SOCK",
)
# Covered by empty directories inside the sandbox (with the user's home).
COVERED = ("/tmp", "/var/tmp", "/run")  # noqa: S108
# Made inside the sandbox only: how a process tells it runs in a check's sandbox.
MARKER = "/run/sentiment-check-sandbox"


class IsolationError(ReleaseError):
    """Checks cannot be run isolated here."""


def forbidden_patterns(allowed: Sequence[str]) -> list[str]:
    """The allow-list entries that would let a signing key or a token through."""
    return [
        pattern for pattern in allowed
        if pattern.strip("*?") == "" or any(fnmatch.fnmatchcase(name, pattern) for name in NEVER)
    ]  # fmt: skip


def inside_sandbox() -> bool:
    """Whether this process runs in a check's sandbox: bubblewrap is the first process of
    the PID namespace it made, and the marker it made is there."""
    try:
        first = Path("/proc/1/comm").read_text(encoding="utf-8").strip()
    except OSError:
        return False
    return first == "bwrap" and Path(MARKER).is_dir()


@dataclass(frozen=True)
class Isolation:
    # Variable names a check may see; a trailing * matches a prefix (LC_*).
    allowed: tuple[str, ...]
    # Directories with private keys and API keys: covered in the sandbox.
    secrets: tuple[Path, ...] = ()
    # Directories checks read besides the checkout (shown again if a cover hid them).
    readable: tuple[Path, ...] = ()

    def environment(self, scratch: Path, given: Mapping[str, str] | None = None) -> dict[str, str]:
        """The allowed part of this process's environment, plus what a check sets itself
        (the gates' API key for a suite of the service). Its $HOME and $TMPDIR are fresh
        directories in `scratch`, the one place it may write but its reports."""
        kept = {
            name: value for name, value in os.environ.items()
            if name not in NEVER and any(fnmatch.fnmatchcase(name, p) for p in self.allowed)
        }  # fmt: skip
        for name, folder in (("HOME", "home"), ("TMPDIR", "tmp")):
            (scratch / folder).mkdir(parents=True, exist_ok=True)
            kept[name] = str(scratch / folder)
        return {**kept, **(given or {})}

    def command(
        self, argv: Sequence[str], writable: Sequence[Path], readable: Sequence[Path] = ()
    ) -> list[str]:
        """`argv` as it runs for a check: in the sandbox, with `writable` (its reports, its
        scratch directory) the only directories it may change and `readable` (the
        checkout, the data) shown again if a cover hid them. Inside a check's sandbox
        already (a gate run by the unit tests), as it is: the sandbox around it holds, and
        a process without capabilities cannot start another."""
        if inside_sandbox():
            return list(argv)
        options = ["--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc"]
        home = Path.home()
        for covered in (*COVERED, str(home)):
            if Path(covered).is_dir() and Path(covered) != Path("/"):
                options += ["--tmpfs", covered]
        python = {Path(sys.prefix), Path(sys.base_prefix), Path(sys.executable).resolve().parent}
        shown = (*readable, *self.readable)
        for path in sorted({*python, *(Path(p).resolve() for p in shown)}):
            if path.exists():
                options += ["--ro-bind", str(path), str(path)]
        for path in writable:
            path.mkdir(parents=True, exist_ok=True)
            options += ["--bind", str(path.resolve()), str(path.resolve())]
        for path in self.secrets:
            if path.is_dir():
                options += ["--tmpfs", str(path.resolve())]
        return [
            self.bwrap(), *options, "--dir", MARKER, "--unshare-pid", "--die-with-parent",
            "--new-session", "--cap-drop", "ALL", "--", *argv,
        ]  # fmt: skip

    def bwrap(self) -> str:
        found = shutil.which(BWRAP)
        if found is None:
            raise IsolationError(
                "checks run in a sandbox where they cannot read signing keys, tokens or "
                "sockets, and bubblewrap is not installed: `apt-get install bubblewrap` "
                "(Debian, Ubuntu; `dnf install bubblewrap` on Fedora)"
            )
        return found

    def preflight(self) -> None:
        """IsolationError, before anything is deployed, when the sandbox cannot start here."""
        if inside_sandbox():
            return
        done = run(self.command(["true"], []), env={}, check=False, timeout=60)
        if not done.ok:
            raise IsolationError(
                f"checks cannot run in their sandbox here (bubblewrap: {done.output[-300:]}); "
                "on Ubuntu 24.04, unprivileged user namespaces are restricted by AppArmor "
                "(sysctl kernel.apparmor_restrict_unprivileged_userns=0 lifts it)"
            )
