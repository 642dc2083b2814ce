"""Where a check's processes run: pytest, ruff, locust and every package they import are
code a gate does not trust with its keys. They get an environment made of the variables
config/trust.yaml allows (check_environment), never the gate's own, and where this
machine keeps private keys (its own pairs, `make keys`), they run in a bubblewrap
sandbox that cannot read them:

    the whole file system read-only, but for a scratch directory of their own (their
    $HOME and $TMPDIR) and the run's reports directory; the key directories covered by
    empty ones; a PID namespace of their own with its own /proc (no /proc/<gate's
    pid>/root way around the cover); no capabilities, even as root; killed with the gate.

Read-only also means a check cannot leave code behind for the signing step that
follows it, nor edit the evidence, ledgers and unsigned records it is judged by.
Without private keys on the machine (GitHub's runners: the key reaches only the signing
step), there is nothing to hide and the allow-list alone applies.
"""

import fnmatch
import os
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from support.errors import ReleaseError
from support.process import run

BWRAP = "bwrap"
# Variables no check ever sees, whatever the allow-list says: signing keys and tokens.
NEVER = (
    "EVIDENCE_SIGNING_KEY",
    "GIT_TOKEN",
    "GITHUB_TOKEN",
    "GH_TOKEN",
    "REGISTRY_TOKEN",
    "ACTIONS_ID_TOKEN_REQUEST_TOKEN",
    "ACTIONS_ID_TOKEN_REQUEST_URL",
    "ACTIONS_RUNTIME_TOKEN",
    "API_KEY_HASHES",
    "GATE_API_KEY",
    "KUBECONFIG_DATA",
)


class IsolationError(ReleaseError):
    """Checks cannot be run where they cannot read the signing keys."""


def forbidden_patterns(allowed: Sequence[str]) -> list[str]:
    """The allow-list entries that would let a signing key or a token through."""
    return [
        pattern for pattern in allowed
        if pattern.strip("*") == "" or any(fnmatch.fnmatchcase(name, pattern) for name in NEVER)
    ]  # fmt: skip


@dataclass(frozen=True)
class Isolation:
    # Variable names a check may see; a trailing * matches a prefix (LC_*).
    allowed: tuple[str, ...]
    # Directories with private keys: hidden from checks.
    secrets: tuple[Path, ...] = ()

    def environment(self, scratch: Path, given: Mapping[str, str] | None = None) -> dict[str, str]:
        """The allowed part of this process's environment, plus what a check sets itself
        (the gates' API key for a suite of the service). Its $HOME and $TMPDIR are fresh
        directories in `scratch` (in the sandbox, the one place it may write but its
        reports): nothing it leaves there outlives it."""
        kept = {
            name: value for name, value in os.environ.items()
            if name not in NEVER and any(fnmatch.fnmatchcase(name, p) for p in self.allowed)
        }  # fmt: skip
        for name, folder in (("HOME", "home"), ("TMPDIR", "tmp")):
            (scratch / folder).mkdir(parents=True, exist_ok=True)
            kept[name] = str(scratch / folder)
        return {**kept, **(given or {})}

    @property
    def sandboxed(self) -> bool:
        """Whether there are keys here to hide, so checks run in the sandbox; not when
        this runs in one already (a gate run by a check, as the unit tests do): the outer
        sandbox hides this machine's keys, and a sandbox without capabilities cannot
        start another."""
        return any(_holds_files(path) for path in self.secrets) and not inside_sandbox()

    def command(self, argv: Sequence[str], writable: Sequence[Path]) -> list[str]:
        """`argv` as it runs for a check: in the sandbox where there are keys to hide,
        with `writable` (its reports, its scratch directory) the only directories it may
        change."""
        if not self.sandboxed:
            return list(argv)
        options = ["--ro-bind", "/", "/", "--dev-bind", "/dev", "/dev", "--proc", "/proc"]
        for path in writable:
            path.mkdir(parents=True, exist_ok=True)
            options += ["--bind", str(path.resolve()), str(path.resolve())]
        for path in self.secrets:
            if path.is_dir():
                options += ["--tmpfs", str(path.resolve())]
        return [
            self.bwrap(), *options, "--unshare-pid", "--die-with-parent", "--new-session",
            "--cap-drop", "ALL", "--", *argv,
        ]  # fmt: skip

    def bwrap(self) -> str:
        found = shutil.which(BWRAP)
        if found is None:
            raise IsolationError(
                "this machine keeps signing keys "
                f"({', '.join(str(p) for p in self.secrets)}), so checks run in a sandbox that "
                "cannot read them, and bubblewrap is not installed: `apt-get install "
                "bubblewrap` (Debian, Ubuntu; `dnf install bubblewrap` on Fedora)"
            )
        return found

    def preflight(self) -> None:
        """IsolationError, before any check runs, when the sandbox cannot start here."""
        if not self.sandboxed:
            return
        done = run(self.command(["true"], []), env={}, check=False, timeout=60)
        if not done.ok:
            raise IsolationError(
                f"checks cannot run in their sandbox here (bubblewrap: {done.output[-300:]}); "
                "on Ubuntu 24.04, unprivileged user namespaces are restricted by AppArmor "
                "(sysctl kernel.apparmor_restrict_unprivileged_userns=0 lifts it)"
            )


def inside_sandbox() -> bool:
    """Whether this process runs in a check's sandbox: bubblewrap is the first process of
    the PID namespace it made (outside, that is the system's init)."""
    try:
        return Path("/proc/1/comm").read_text(encoding="utf-8").strip() == "bwrap"
    except OSError:
        return False


def _holds_files(path: Path) -> bool:
    try:
        return path.is_dir() and any(path.iterdir())
    except OSError:
        return True  # unreadable to us: still hidden
