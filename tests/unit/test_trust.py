"""Who may sign which environment's gate evidence (config/trust.yaml), what signs here, and
the `sentiment keys` commands that make the pairs."""

import os
import shutil
import stat
from pathlib import Path

import pytest
from click.testing import CliRunner

from sentiment_release.cli.main import cli
from sentiment_release.gates.trust import (
    SIGNING_KEY_VARIABLE,
    SigningKeyError,
    TrustedKeys,
    load_trust_settings,
)
from sentiment_release.support.errors import ReleaseError
from sentiment_release.support.signing import generate_key_pair, load_public_key
from tests.conftest import CONFIG_DIR, make_keyring

TRUST = """\
schema_version: 1
local_keys: {local}
max_clock_skew_seconds: 300
gates:
  stage: [{keys}]
check_environment: [PATH]
"""


def committed(tmp_path: Path, local: bool = True) -> tuple[TrustedKeys, bytes]:
    """A config dir whose trust.yaml lists one committed key for stage; its private half."""
    config = tmp_path / "config"
    (config / "keys").mkdir(parents=True)
    pair = generate_key_pair()
    (config / "keys" / "stage-1.pub").write_bytes(pair.public_pem)
    (config / "trust.yaml").write_text(
        TRUST.format(local=str(local).lower(), keys="keys/stage-1.pub")
    )
    keyring = TrustedKeys(load_trust_settings(config), config, tmp_path / "local-keys")
    return keyring, pair.private_pem


def test_the_repository_trust_policy_reads():
    settings = load_trust_settings(CONFIG_DIR)
    assert settings.local_keys is True
    assert set(settings.gates) == {"dev", "test", "stage", "prod"}


def test_a_committed_key_signs_when_the_signing_step_is_given_it(tmp_path, monkeypatch):
    keyring, private = committed(tmp_path)
    [key_id] = keyring.trusted("stage")
    # The secret in the environment is read by nothing: only the key given counts.
    monkeypatch.setenv(SIGNING_KEY_VARIABLE, private.decode())
    assert keyring.signer("stage", private, "--key-file").public_key.keyid == key_id
    # The same secret cannot sign another environment's gate: its evidence would not count.
    with pytest.raises(SigningKeyError, match="not trusted for test"):
        keyring.signer("test", private, "--key-file")
    with pytest.raises(SigningKeyError, match="no key to sign the test gate's evidence"):
        keyring.signer("test")


def test_without_local_keys_only_committed_keys_count(tmp_path):
    keyring, _ = committed(tmp_path, local=False)
    local_id, made = keyring.create_local("stage")
    assert made
    assert local_id not in keyring.trusted("stage")
    with pytest.raises(SigningKeyError, match="local_keys: false"):
        keyring.signer("stage")
    with pytest.raises(SigningKeyError, match="local_keys: false"):
        keyring.signer("stage", (keyring.local_dir / "stage.pem").read_bytes(), "--key-file")


def test_a_gate_without_any_key_fails_before_it_runs_and_says_how_to_get_one(tmp_path):
    keyring = TrustedKeys(load_trust_settings(CONFIG_DIR), CONFIG_DIR, tmp_path / "none")
    with pytest.raises(SigningKeyError, match=r"run `make keys`.*EVIDENCE_SIGNING_KEY secret"):
        keyring.signer("dev")


def test_a_bad_key_is_named(tmp_path):
    with pytest.raises(ReleaseError, match="--key-file is not an unencrypted PEM"):
        make_keyring(tmp_path / "keys").signer("dev", b"not a key", "--key-file")


@pytest.mark.parametrize("name", ["/etc/ssh/key.pub", "../keys/x.pub", "keys/../../x.pub",
                                  "other/x.pub"])  # fmt: skip
def test_trusted_keys_are_files_under_config_keys(tmp_path, name):
    (tmp_path / "trust.yaml").write_text(TRUST.format(local="true", keys=name))
    with pytest.raises(ReleaseError, match="is not a file under keys/"):
        load_trust_settings(tmp_path)


def test_a_listed_key_that_is_missing_is_an_error_not_a_silent_distrust(tmp_path):
    keyring, _ = committed(tmp_path)
    (keyring.config_dir / "keys" / "stage-1.pub").unlink()
    with pytest.raises(ReleaseError, match=r"names keys/stage-1\.pub for stage, which does not"):
        keyring.trusted("stage")


def test_local_pairs_are_kept_private_and_kept_unless_replaced(tmp_path):
    keyring = make_keyring(tmp_path / "keys")
    first, made = keyring.create_local("dev")
    assert not made  # make_keyring made it
    assert stat.S_IMODE(os.stat(tmp_path / "keys" / "dev.pem").st_mode) == 0o600
    assert stat.S_IMODE(os.stat(tmp_path / "keys").st_mode) == 0o700
    assert keyring.create_local("dev") == (first, False)
    second, made = keyring.create_local("dev", replace=True)
    assert made
    assert second != first
    assert list(keyring.trusted("dev")) == [second]


@pytest.fixture
def run(tmp_path, monkeypatch):
    """The CLI in a checkout of its own: `keys github` writes into config/keys/."""
    checkout = tmp_path / "checkout"
    shutil.copytree(CONFIG_DIR, checkout / "config")
    monkeypatch.chdir(checkout)
    monkeypatch.setenv("DELIVERY_STATE_DIR", str(tmp_path / "state"))
    return lambda *args: CliRunner().invoke(cli, list(args))


def test_keys_create_then_show(run, tmp_path):
    created = run("keys", "create", "stage")
    assert created.exit_code == 0, created.output
    assert "stage      key " in created.output
    assert "created" in created.output
    shown = run("keys", "show")
    assert "stage      signs with this machine's pair" in shown.output
    assert "dev        cannot sign here: no key" in shown.output
    assert run("keys", "create", "stage").output.split()[3] == "kept"


def test_keys_github_writes_the_public_half_and_prints_the_private_half_once(run):
    out = Path("config/keys/prod-2026.pub")
    made = run("keys", "github", "prod", "--out", str(out))
    assert made.exit_code == 0, made.output
    key = load_public_key(out.read_bytes(), str(out))
    assert "-----BEGIN PRIVATE KEY-----" in made.output
    assert key.keyid[:16] in made.output
    assert list(out.parent.glob("*.pem")) == []  # the private half is kept nowhere
    again = run("keys", "github", "prod", "--out", str(out))
    assert again.exit_code == 1
    assert "never overwritten" in again.output


@pytest.mark.parametrize("out", ["config/prod.pub", "/tmp/prod.pub", "config/keys/prod.pem"])
def test_keys_github_writes_only_into_config_keys(run, out):
    made = run("keys", "github", "prod", "--out", out)
    assert made.exit_code == 1
    assert "--out must be a .pub file directly in" in made.output
    assert "PRIVATE KEY" not in made.output


def test_the_evidence_listing_shows_what_does_not_count_and_why(run, tmp_path):
    forged = tmp_path / "state" / "evidence" / "20991231T000000000000Z-stage-0123456789ab.json"
    forged.parent.mkdir(parents=True)
    forged.write_text('{"result": "passed"}')
    listed = run("evidence")
    assert listed.exit_code == 0, listed.output
    assert f"NOT COUNTED evidence {forged.stem} does not count: it is not a DSSE" in listed.output
