"""A stand-in `podman`/`docker` executable: answers per subcommand, logs every call."""

import shlex
from pathlib import Path

from sentiment_release.delivery.engine import Engine


def install_fake_engine(
    bin_dir: Path, name: str, answers: dict[str, tuple[int, str]] | None = None
) -> Path:
    """Writes bin_dir/name. `answers` maps a subcommand to (exit code, output); the
    default for any subcommand is exit 0 and no output. Calls go to bin_dir/<name>.calls."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    calls = bin_dir / f"{name}.calls"
    cases = "".join(
        f"  {shlex.quote(command)}) echo {shlex.quote(output)} >&2; "
        f"{'echo ' + shlex.quote(output) + ';' if code == 0 else ''} exit {code};;\n"
        for command, (code, output) in (answers or {}).items()
    )
    script = bin_dir / name
    script.write_text(
        "#!/bin/sh\n"
        f'echo "$*" >> {shlex.quote(str(calls))}\n'
        'case "$1" in\n'
        f"{cases}"
        "  *) exit 0;;\n"
        "esac\n"
    )
    script.chmod(0o755)
    return calls


def fake_engine(
    bin_dir: Path, name: str, answers: dict[str, tuple[int, str]] | None = None
) -> tuple[Engine, Path]:
    """An Engine driving a stand-in executable, and the file its calls are logged to."""
    calls = install_fake_engine(bin_dir, name, answers)
    return Engine(name, str(bin_dir / name)), calls
