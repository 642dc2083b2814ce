"""Model bundles through a real registry (Debian's docker-registry), with the `sentiment
models` commands a person and CI run: push by digest (again: the same digest), list with
metrics and the pin, pin, pull into a machine that lacks the model, and clear refusals."""

import json
import shutil
import subprocess
import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from sentiment.model import BundleMetadata, ModelFolder
from sentiment.model.publish import add_bundle, set_current
from sentiment_release.cli.main import cli
from sentiment_release.delivery.champion import read_pin
from sentiment_release.delivery.model_store import ModelStore, ModelStoreError
from sentiment_release.delivery.registry_server import BINARIES, LocalRegistry
from tests.conftest import FIXTURE_DATA, LENIENT_GATE, env_name, train_fixture_model
from tests.integration.test_registry_server import free_address

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not any(map(shutil.which, BINARIES)), reason="no docker-registry"),
]


@pytest.fixture(autouse=True)
def not_against_a_deployed_service(request: pytest.FixtureRequest) -> None:
    if request.config.getoption("--base-url"):
        pytest.skip("tests the delivery tooling, not the service at --base-url")


@pytest.fixture
def registry(tmp_path) -> str:
    server = LocalRegistry(free_address(), tmp_path / "state")
    server.ensure_running()
    yield server.address
    server.stop()


@dataclass
class Done:
    returncode: int
    stdout: str
    stderr: str


def models(tmp_path: Path, address: str, bundles_dir: Path, *args: str) -> Done:
    """`sentiment models ...` as a person runs it, in this process (the checkout is the
    working directory, as with make)."""
    env = {
        "DELIVERY_REGISTRY__ADDRESS": address,
        "DELIVERY_STATE_DIR": str(tmp_path / "state"),
        "SENTIMENT_MODEL__BUNDLES_DIR": str(bundles_dir),
        "SENTIMENT_CHAMPION_FILE": str(tmp_path / "champion.yaml"),
    }
    result = CliRunner().invoke(cli, ["models", *args], env=env)
    return Done(result.exit_code, result.stdout, result.stderr)


def a_later_bundle(source: Path, target: Path) -> BundleMetadata:
    """Another published version: the same files, a later version id and time."""
    original = ModelFolder(source).metadata()
    later = original.created_at + timedelta(minutes=1)
    metadata = original.model_copy(update={
        "created_at": later, "version": f"{later:%Y%m%dT%H%M%SZ}-{original.sha256[:8]}",
    })  # fmt: skip
    bundle = ModelFolder(source).path_of(original.version)
    files = {name: (bundle / name).read_bytes() for name in ("model.joblib", "scorer.json")}
    add_bundle(ModelFolder(target), metadata.model_dump_json().encode(), files)
    set_current(ModelFolder(target), metadata.version)
    return metadata


def test_push_list_pin_and_pull_on_a_machine_without_the_model(
    registry, trained_registry, tmp_path
):
    pushed = models(tmp_path, registry, trained_registry, "push")
    assert pushed.returncode == 0, pushed.stderr
    reference = pushed.stdout.split(": ")[-1].strip()
    assert reference.startswith(f"{registry}/sentiment-model@sha256:")
    digest = reference.split("@")[1]
    again = models(tmp_path, registry, trained_registry, "push")
    assert again.stdout == pushed.stdout  # the same bundle, the same digest

    # A second model, published later: both are kept, oldest first, with their metrics.
    second_dir = tmp_path / "second"
    second = a_later_bundle(trained_registry, second_dir)
    assert models(tmp_path, registry, second_dir, "push").returncode == 0

    pinned = models(tmp_path, registry, trained_registry, "pin", digest)
    assert pinned.returncode == 0, pinned.stderr
    pin = read_pin(tmp_path / "champion.yaml")
    first = ModelFolder(trained_registry).metadata()
    assert (pin.digest, pin.version) == (digest, first.version)

    listed = models(tmp_path, registry, trained_registry, "list", "--remote").stdout.splitlines()
    assert [line.split()[:3] for line in listed] == [
        ["*", first.version, digest],
        [second.version, listed[1].split()[1], "accuracy"],
    ]
    assert f"dataset {first.dataset['sha256'][:12]}" in listed[0]

    # A machine without the model: the pin is pulled, checked, and made current.
    elsewhere = tmp_path / "elsewhere"
    pulled = models(tmp_path, registry, elsewhere, "champion")
    assert pulled.returncode == 0, pulled.stderr
    assert f"champion {digest}" in pulled.stdout
    assert ModelFolder(elsewhere).load().metadata == first


def test_refusals_say_what_is_wrong(registry, trained_registry, tmp_path):
    missing = "sha256:" + "0" * 64
    done = models(tmp_path, registry, tmp_path / "m", "pull", missing)
    assert done.returncode == 1
    assert f"has no model {missing}" in done.stderr
    done = models(tmp_path, registry, tmp_path / "m", "pin", "latest")
    assert done.returncode == 1
    assert "is not a sha256 digest" in done.stderr
    assert not (tmp_path / "champion.yaml").exists()
    done = models(tmp_path, registry, tmp_path / "m", "pull")
    assert done.returncode == 1
    assert "no champion is pinned" in done.stderr


@pytest.mark.skipif(shutil.which("skopeo") is None, reason="skopeo is not installed")
def test_an_image_is_not_taken_for_a_model(registry, tmp_path):
    """A digest of the same repository that is not a model bundle (here: an image's
    manifest pushed there) is refused before anything is written."""
    from tests.integration.test_registry_skopeo import tiny_image

    layout = tmp_path / "layout"
    tiny_image(layout)
    target = f"docker://{registry}/sentiment-model:image"
    subprocess.run(["skopeo", "copy", "--dest-tls-verify=false", f"oci:{layout}:seed", target],
                   check=True, capture_output=True)  # fmt: skip
    store = ModelStore(f"{registry}/sentiment-model", tls_verify=False)
    digest = subprocess.run(["skopeo", "inspect", "--tls-verify=false", "--format",
                             "{{.Digest}}", target], check=True, capture_output=True,
                            text=True).stdout.strip()  # fmt: skip
    with pytest.raises(ModelStoreError, match="not a model"):
        store.pull(digest, ModelFolder(tmp_path / "models"))
    assert not (tmp_path / "models").exists()
    [listed] = store.list()  # listed for what it is, not for a model
    assert listed.tags == ("image",)
    assert "not a model bundle artifact" in listed.problem


def test_a_registry_that_does_not_answer_fails_at_once(tmp_path):
    started = time.monotonic()
    store = ModelStore(f"{free_address()}/sentiment-model", tls_verify=False)
    with pytest.raises(ModelStoreError, match="does not answer"):
        store.list()
    assert time.monotonic() - started < 10  # the ORAS client alone retries for minutes


def test_retrain_publishes_a_better_challenger_and_refuses_a_worse_one(registry, tmp_path):
    """`sentiment retrain --publish` against a pinned champion: a challenger better on the
    comparison sets is pushed and pinned; a worse one is refused and the pin stays."""
    models_dir = tmp_path / "models"
    lenient = {env_name(key): str(value) for key, value in LENIENT_GATE.items()}
    env = {
        "DELIVERY_REGISTRY__ADDRESS": registry,
        "DELIVERY_STATE_DIR": str(tmp_path / "state"),
        "SENTIMENT_MODEL__BUNDLES_DIR": str(models_dir),
        "SENTIMENT_CHAMPION_FILE": str(tmp_path / "champion.yaml"),
        "SENTIMENT_DATA_DIR": str(FIXTURE_DATA),
        **lenient,
    }
    hobbled = {"SENTIMENT_TRAINING__CLASSIFIER__C": "0.0001"}  # scores everything about 0.5
    assert train_fixture_model(models_dir, **{"training.classifier.C": 0.0001}).published
    assert CliRunner().invoke(cli, ["models", "push", "--pin"], env=env).exit_code == 0
    weak = read_pin(tmp_path / "champion.yaml")

    better = CliRunner().invoke(cli, ["retrain", "--publish"], env=env)
    assert better.exit_code == 0, better.output
    assert "ACCEPTED" in better.stdout
    pinned = read_pin(tmp_path / "champion.yaml")
    assert pinned.digest != weak.digest
    assert ModelFolder(models_dir).current_version() == pinned.version
    report = json.loads(next((tmp_path / "state" / "reports" / "retrain").glob(
        f"{pinned.version}.json")).read_text())  # fmt: skip
    assert report["accepted"] is True
    assert report["champion"] == weak.version
    held_out = report["results"]["held_out"]
    assert held_out["challenger"]["roc_auc"] > held_out["champion"]["roc_auc"]

    worse = CliRunner().invoke(cli, ["retrain", "--publish"], env={**env, **hobbled})
    assert worse.exit_code == 0, worse.output
    assert "REFUSED" in worse.stdout
    assert "against the champion's" in worse.stdout
    assert read_pin(tmp_path / "champion.yaml") == pinned  # the champion stays
    assert ModelFolder(models_dir).current_version() == pinned.version
