"""The API keys kept on this machine per environment, and `sentiment api-keys`."""

import stat
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from sentiment.serving.api_keys import ApiKeyRing, new_key
from sentiment_release.cli.main import cli
from sentiment_release.delivery.api_keys import ApiKeyStore
from sentiment_release.delivery.errors import DeliveryError

HEADER = "# API keys of stage"


@pytest.fixture
def store(tmp_path: Path) -> ApiKeyStore:
    return ApiKeyStore(tmp_path / "api-keys")


def ring(store: ApiKeyStore, environment: str = "stage") -> ApiKeyRing:
    return ApiKeyRing(store.hashes(environment))


def test_a_created_key_counts_and_only_its_hash_is_kept(store: ApiKeyStore):
    key = store.create("stage", "acme")
    assert ring(store).identify(key) == "acme"
    text = store.hashes_file("stage").read_text()
    assert text.startswith(HEADER)
    assert key not in text
    assert key[-43:] not in text
    assert not store.gate_key_file("stage").exists()
    assert ring(store, "prod").identify(key) is None  # one environment's key only


def test_a_second_create_for_the_same_id_is_refused(store: ApiKeyStore):
    store.create("stage", "acme")
    with pytest.raises(DeliveryError, match="has a key acme already: `rotate`"):
        store.create("stage", "acme")


def test_rotation_keeps_both_until_the_oldest_is_revoked(store: ApiKeyStore):
    old = store.create("stage", "acme")
    new = store.rotate("stage", "acme")
    assert [ring(store).identify(key) for key in (old, new)] == ["acme", "acme"]
    with pytest.raises(DeliveryError, match="acme has 2 keys in stage already"):
        store.rotate("stage", "acme")
    assert store.revoke("stage", "acme", oldest_only=True) == 1
    assert [ring(store).identify(key) for key in (old, new)] == [None, "acme"]


def test_revoke_removes_every_key_of_the_id_and_no_other(store: ApiKeyStore):
    acme = store.create("stage", "acme")
    store.rotate("stage", "acme")
    other = store.create("stage", "other")
    assert store.revoke("stage", "acme") == 2
    assert ring(store).identify(acme) is None
    assert ring(store).identify(other) == "other"
    with pytest.raises(DeliveryError, match="stage has no key acme"):
        store.revoke("stage", "acme")
    with pytest.raises(DeliveryError, match="no key nobody to rotate"):
        store.rotate("stage", "nobody")


def test_the_gate_key_is_kept_private_and_replaced_when_no_longer_valid(store: ApiKeyStore):
    assert store.ensure_gate_key("stage") == "created"
    path = store.gate_key_file("stage")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    first = store.gate_key("stage")
    assert ring(store).identify(first) == "gate"
    assert store.ensure_gate_key("stage") == "kept"
    assert store.gate_key("stage") == first
    store.revoke("stage", "gate")
    assert store.ensure_gate_key("stage") == "created"
    assert ring(store).identify(store.gate_key("stage")) == "gate"
    assert len(ring(store)) == 1


def test_a_gate_key_rotation_keeps_the_old_one_valid(store: ApiKeyStore):
    store.ensure_gate_key("stage")
    old = store.gate_key("stage")
    assert store.ensure_gate_key("stage", rotate=True) == "rotated"
    new = store.gate_key("stage")
    assert new != old
    assert [ring(store).identify(key) for key in (old, new)] == ["gate", "gate"]


def test_install_takes_ci_secrets_only_when_they_fit_together(tmp_path: Path):
    source = ApiKeyStore(tmp_path / "source")
    source.ensure_gate_key("prod")
    other = source.create("prod", "acme")
    hashes = source.hashes_file("prod").read_text()
    gate_key = source.gate_key("prod")

    store = ApiKeyStore(tmp_path / "ci")
    for wrong_key in (other, gate_key[:-1], ""):
        with pytest.raises(DeliveryError, match="is not a key with id gate"):
            store.install("prod", hashes, wrong_key)
    with pytest.raises(DeliveryError, match="list no key"):
        store.install("prod", "# nothing\n", gate_key)
    with pytest.raises(DeliveryError, match="line 1"):
        store.install("prod", "gate not-hex\n", gate_key)
    assert not store.hashes_file("prod").exists()
    store.install("prod", hashes, f"{gate_key}\n")
    assert store.gate_key("prod") == gate_key
    assert ring(store, "prod").identify(other) == "acme"


@pytest.mark.parametrize("environment", ["../x", "Stage", ""])
def test_an_environment_that_is_not_a_name_is_refused(store: ApiKeyStore, environment: str):
    with pytest.raises(DeliveryError, match="is not an environment name"):
        store.create(environment, "acme")


class TestCommand:
    @pytest.fixture
    def runner(self, tmp_path: Path, monkeypatch) -> CliRunner:
        monkeypatch.setenv("DELIVERY_STATE_DIR", str(tmp_path / "state"))
        return CliRunner()

    def test_create_prints_the_key_once_on_stdout_and_list_never_shows_it(self, runner, tmp_path):
        made = runner.invoke(cli, ["api-keys", "create", "stage", "acme"])
        assert made.exit_code == 0, made.output
        key = made.stdout.strip()
        assert key.startswith("snt_acme_")
        listed = runner.invoke(cli, ["api-keys", "list", "stage"])
        assert listed.exit_code == 0
        assert "acme" in listed.stdout
        assert key not in listed.stdout
        kept = (tmp_path / "state").rglob("*")
        assert key not in "".join(p.read_text() for p in kept if p.is_file())

    def test_gate_makes_a_key_for_every_environment_that_requires_them(self, runner, tmp_path):
        done = runner.invoke(cli, ["api-keys", "gate"])
        assert done.exit_code == 0, done.output
        assert [line.split()[0] for line in done.stdout.splitlines()] == ["stage", "prod"]
        assert (tmp_path / "state" / "api-keys" / "prod" / "gate.key").exists()
        assert not (tmp_path / "state" / "api-keys" / "test").exists()

    def test_install_reads_the_secrets_from_the_environment(self, runner, tmp_path, monkeypatch):
        source = ApiKeyStore(tmp_path / "source")
        source.ensure_gate_key("stage")
        missing = runner.invoke(cli, ["api-keys", "install", "stage"])
        assert missing.exit_code == 1
        assert "API_KEY_HASHES and GATE_API_KEY must both be set" in missing.output
        monkeypatch.setenv("API_KEY_HASHES", source.hashes_file("stage").read_text())
        monkeypatch.setenv("GATE_API_KEY", source.gate_key("stage"))
        done = runner.invoke(cli, ["api-keys", "install", "stage"])
        assert done.exit_code == 0, done.output
        assert source.gate_key("stage") not in done.output
        installed = tmp_path / "state" / "api-keys" / "stage" / "gate.key"
        assert installed.read_text().strip() == source.gate_key("stage")

    def test_a_bad_id_or_environment_is_a_clear_error(self, runner):
        bad_id = runner.invoke(cli, ["api-keys", "create", "stage", "Not An Id"])
        assert bad_id.exit_code == 1
        assert "is not a key id" in bad_id.output
        bad_env = runner.invoke(cli, ["api-keys", "create", "nowhere", "acme"])
        assert bad_env.exit_code == 2
        assert "'nowhere' is not one of" in bad_env.output


def test_changes_made_at_once_are_all_kept(store: ApiKeyStore):
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(8) as pool:
        keys = list(pool.map(lambda n: store.create("stage", f"holder-{n}"), range(24)))
    assert [ring(store).identify(key) for key in keys] == [f"holder-{n}" for n in range(24)]


def test_revoke_oldest_goes_by_the_time_a_key_was_made_not_its_line(store: ApiKeyStore):
    older, older_hash = new_key("acme", datetime(2026, 1, 1, tzinfo=UTC))
    newer, newer_hash = new_key("acme", datetime(2026, 6, 1, tzinfo=UTC))
    # A hand-edited secret may list the newer key first.
    store.hashes_file("stage").parent.mkdir(parents=True)
    store.hashes_file("stage").write_text(f"{newer_hash.line()}\n{older_hash.line()}\n")
    store.revoke("stage", "acme", oldest_only=True)
    assert [ring(store).identify(key) for key in (older, newer)] == [None, "acme"]
