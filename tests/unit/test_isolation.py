"""What a check's processes see: the allowed variables only, never a key or a token, and,
where this machine keeps private keys, a sandbox that cannot read them."""

import os

import pytest

from gates.isolation import NEVER, Isolation, IsolationError, forbidden_patterns, inside_sandbox
from gates.trust import TrustSettings


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


def test_without_keys_to_hide_a_check_runs_as_it_is(tmp_path):
    isolation = Isolation(("PATH",), (tmp_path / "keys",))
    assert not isolation.sandboxed
    assert isolation.command(["pytest", "-q"], [tmp_path]) == ["pytest", "-q"]


def test_with_keys_a_check_runs_in_the_sandbox_over_a_covered_key_directory(tmp_path):
    keys = tmp_path / "keys"
    keys.mkdir()
    (keys / "stage.pem").write_text("private")
    isolation = Isolation(("PATH",), (keys,))
    if inside_sandbox():
        assert not isolation.sandboxed  # the sandbox around this test hides the real keys
        return
    command = isolation.command(["pytest"], [tmp_path / "reports"])
    assert command[0].endswith("bwrap")
    assert command[command.index("--tmpfs") + 1] == str(keys.resolve())
    assert command[1:4] == ["--ro-bind", "/", "/"]
    assert "--cap-drop" in command
    assert "--unshare-pid" in command
    assert command[-2:] == ["--", "pytest"]
    home = isolation.environment(tmp_path / "scratch")["HOME"]
    assert home == str(tmp_path / "scratch" / "home")


def test_without_bubblewrap_a_machine_with_keys_refuses_to_run_checks(tmp_path, monkeypatch):
    keys = tmp_path / "keys"
    keys.mkdir()
    (keys / "stage.pem").write_text("private")
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    isolation = Isolation(("PATH",), (keys,))
    if inside_sandbox():
        pytest.skip("inside a sandbox nothing more is hidden")
    with pytest.raises(IsolationError, match="apt-get install bubblewrap"):
        isolation.command(["pytest"], [])
