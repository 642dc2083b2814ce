"""What a check's processes see: the allowed variables only, never a key or a token, and,
where this machine keeps private keys, a sandbox that cannot read them."""

import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from sentiment_release.gates.isolation import (
    NEVER,
    Isolation,
    IsolationError,
    forbidden_patterns,
    inside_sandbox,
)
from sentiment_release.gates.trust import TrustSettings
from tests.conftest import ROOT


@pytest.mark.parametrize("pattern", ["*", "**", "EVIDENCE_*", "*_TOKEN", "GIT_TOKEN", "*KEY*"])
def test_an_allow_list_that_lets_a_key_or_a_token_through_is_refused(pattern):
    assert forbidden_patterns(["PATH", pattern]) == [pattern]
    with pytest.raises(ValueError, match="would let signing keys or tokens reach the checks"):
        TrustSettings(schema_version=1, local_keys=True, max_clock_skew_seconds=0, gates={},
                      check_environment=["PATH", pattern])  # fmt: skip


def test_a_check_sees_only_the_allowed_variables_and_what_it_is_given(monkeypatch, tmp_path):
    monkeypatch.setenv("LC_ALL", "C.UTF-8")
    monkeypatch.setenv("EVIDENCE_SIGNING_KEY", "-----BEGIN PRIVATE KEY-----")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "x")
    isolation = Isolation(("PATH", "LC_*"))
    found = isolation.environment(tmp_path, {"SENTIMENT_API_KEY": "gate-key"})
    assert found == {"PATH": os.environ["PATH"], "LC_ALL": "C.UTF-8",
                     "SENTIMENT_API_KEY": "gate-key", "HOME": str(tmp_path / "home"),
                     "TMPDIR": str(tmp_path / "tmp")}  # fmt: skip
    assert not set(NEVER) & set(found)


def test_a_check_runs_in_the_sandbox_with_keys_sockets_and_homes_covered(tmp_path):
    if inside_sandbox():
        pytest.skip("inside a check's sandbox a check runs as it is: the outer one holds")
    keys = tmp_path / "keys"
    keys.mkdir()
    isolation = Isolation(("PATH",), (keys,))
    command = isolation.command(["pytest"], [tmp_path / "reports"], [tmp_path])
    assert command[0].endswith("bwrap")
    assert command[1:4] == ["--ro-bind", "/", "/"]
    covered = [command[i + 1] for i, option in enumerate(command) if option == "--tmpfs"]
    assert {"/tmp", "/run", str(Path.home()), str(keys.resolve())} <= set(covered)
    assert covered.index(str(keys.resolve())) == len(covered) - 1  # after the checkout
    for option in ("--unshare-pid", "--new-session", "--die-with-parent"):
        assert option in command
    assert command[command.index("--cap-drop") + 1] == "ALL"
    assert command[command.index("--dev") + 1] == "/dev"
    assert command[-2:] == ["--", "pytest"]


def run_sandboxed(tmp_path: Path, code: str, secrets=()) -> subprocess.CompletedProcess:
    isolation = Isolation(("PATH",), tuple(secrets))
    scratch = tmp_path / "scratch"
    command = isolation.command([sys.executable, "-c", code], [scratch], [ROOT])
    return subprocess.run(command, env=isolation.environment(scratch), capture_output=True,
                          text=True, check=False, cwd=ROOT)  # fmt: skip


def test_in_the_sandbox_nothing_outside_its_scratch_can_be_written(tmp_path):
    if inside_sandbox():
        pytest.skip("inside a check's sandbox a check runs as it is: the outer one holds")
    done = run_sandboxed(tmp_path, (
        "import os, pathlib, tempfile\n"
        "for path in ['.venv/lib/planted.pth', 'release/planted.py', '.git/hooks/pre-push']:\n"
        "    try:\n"
        "        open(path, 'w').write('x')\n"
        "        print('WROTE', path)\n"
        "    except OSError as error:\n"
        "        print('REFUSED', path, error.errno)\n"
        "tempfile.NamedTemporaryFile().write(b'x')\n"
        "pathlib.Path(os.environ['HOME'], 'x').write_text('x')\n"
        "print('scratch ok')\n"
    ))  # fmt: skip
    assert "WROTE" not in done.stdout, done.stdout + done.stderr
    assert done.stdout.count("REFUSED") == 3
    assert "scratch ok" in done.stdout


def test_in_the_sandbox_host_sockets_are_out_of_reach(tmp_path):
    """A Docker or Podman socket (root on the machine) or the session bus lives in /run;
    covered, none of them answers."""
    if inside_sandbox():
        pytest.skip("inside a check's sandbox a check runs as it is: the outer one holds")
    run_dir = Path("/run") / f"sentiment-test-{os.getpid()}"
    run_dir.mkdir(exist_ok=True)
    server = socket.socket(socket.AF_UNIX)
    try:
        server.bind(str(run_dir / "engine.sock"))
        server.listen()
        done = run_sandboxed(tmp_path, (
            "import socket, sys\n"
            f"client = socket.socket(socket.AF_UNIX)\n"
            "try:\n"
            f"    client.connect({str(run_dir / 'engine.sock')!r})\n"
            "    print('CONNECTED')\n"
            "except OSError as error:\n"
            "    print('REFUSED', error.errno)\n"
        ))  # fmt: skip
    finally:
        server.close()
        shutil.rmtree(run_dir, ignore_errors=True)
    assert "REFUSED" in done.stdout, done.stdout + done.stderr


def test_without_bubblewrap_checks_do_not_run(tmp_path, monkeypatch):
    if inside_sandbox():
        pytest.skip("inside a check's sandbox a check runs as it is: the outer one holds")
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(IsolationError, match="apt-get install bubblewrap"):
        Isolation(("PATH",)).command(["pytest"], [])
