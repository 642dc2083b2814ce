"""Fixtures shared by every layer of tests: config, fixture data, a tiny trained model."""

import os
import shutil
import signal
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import requests

from sentiment.model import ModelFolder
from sentiment.serving.settings import Settings, load_settings
from sentiment_release.gates.checks.base import API_KEY_VARIABLE
from sentiment_release.gates.evidence_store import EvidenceStore
from sentiment_release.gates.trust import TrustedKeys, TrustSettings, load_trust_settings
from sentiment_release.support.git import Git
from sentiment_release.training.config import TrainingConfig, load_training_config

if TYPE_CHECKING:
    from sentiment_release.training.train import TrainingResult

ROOT = Path(__file__).resolve().parent.parent
CONFIG_DIR = ROOT / "config"
SERVICE_CONFIG_DIR = CONFIG_DIR / "service"
FIXTURE_DATA = Path(__file__).resolve().parent / "fixtures" / "data"
FIXTURE_UAT = FIXTURE_DATA.parent / "uat" / "expectations.yaml"
# The gates the tests' policies name: each gets a local key pair in make_keyring.
TEST_GATES = ("dev", "test", "uat", "stage", "prod")

# The gates pass their API key in the environment, never on a command line; read here,
# before fixtures clear SENTIMENT_* variables.
GATE_API_KEY = os.environ.get(API_KEY_VARIABLE)

# The fixture data is tiny, so the real quality gate would (rightly) reject its model.
LENIENT_GATE = {
    "training.quality_gate.min_accuracy": 0,
    "training.quality_gate.min_f1": 0,
    "training.quality_gate.min_roc_auc": 0,
}


@contextmanager
def repository_config_only() -> Iterator[None]:
    """Tests check the repository's own config: overrides from the shell (SENTIMENT_*,
    DELIVERY_*, APP_ENV; `make act` hands its own to every job) are set aside."""
    with pytest.MonkeyPatch.context() as patch:
        for name in list(os.environ):
            if name.startswith(("SENTIMENT_", "DELIVERY_")) or name == "APP_ENV":
                patch.delenv(name)
        yield


def env_name(key: str) -> str:
    """The environment variable that overrides a dotted config key."""
    return "SENTIMENT_" + key.upper().replace(".", "__")


@contextmanager
def overridden(**overrides: object) -> Iterator[None]:
    with pytest.MonkeyPatch.context() as patch:
        for key, value in overrides.items():
            patch.setenv(env_name(key), str(value))
        yield


# The monitoring volume of apps made by tests that do not give one (never /var/lib).
MONITORING_DIR = Path(tempfile.mkdtemp(prefix="sentiment-test-monitoring-"))


def make_settings(environment: str = "dev", **overrides: object) -> Settings:
    """The service's settings for `environment`, dotted keys overridden as a user would."""
    overrides.setdefault("monitoring.dir", MONITORING_DIR)
    with overridden(**overrides):
        return load_settings(environment, config_dir=SERVICE_CONFIG_DIR)


def make_training_config(**overrides: object) -> TrainingConfig:
    with overridden(**{**LENIENT_GATE, **overrides}):
        return load_training_config(CONFIG_DIR)


def train_fixture_model(bundles_dir: Path, **overrides: object) -> "TrainingResult":
    """A model trained on the fixture data into `bundles_dir` (lenient quality gate)."""
    config = make_training_config(**overrides)
    # scikit-learn takes most of a second to import, and the gates' pytest runs of the
    # smoke and UAT suites load this file: only what trains pays for it.
    from sentiment_release.training.train import train

    return train(config, FIXTURE_DATA, ModelFolder(bundles_dir), Git(ROOT).revision())


@pytest.fixture(scope="session")
def trained_registry(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A registry holding one model trained on the fixture data (trained once per session)."""
    bundles_dir = tmp_path_factory.mktemp("registry")
    assert train_fixture_model(bundles_dir).published is not None
    return bundles_dir


@pytest.fixture
def registry_copy(trained_registry: Path, tmp_path: Path) -> ModelFolder:
    """A private copy of the trained registry, for tests that damage it."""
    target = tmp_path / "registry"
    shutil.copytree(trained_registry, target)
    for path in target.rglob("*"):
        path.chmod(path.stat().st_mode | 0o200)
    return ModelFolder(target)


@pytest.fixture(autouse=True)
def _nothing_lands_in_the_checkout() -> Iterator[None]:
    """Tests write only to temporary directories: a model, evidence or a cache appearing
    in the checkout fails the test that made it."""
    before = {directory: _listing(directory) for directory in WATCHED}
    yield
    for directory, names in before.items():
        added = _listing(directory) - names
        assert not added, f"the test wrote {sorted(added)} into {directory.relative_to(ROOT)}/"


@pytest.fixture(autouse=True, scope="session")
def _no_registry_outlives_the_tests(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """A registry a test starts and leaves running keeps its images under pytest's
    temporary directory, which a later pytest run deletes: a pipeline that found it
    answering on its port lost its image between two gates. Whatever starts one stops it."""
    yield
    base = str(tmp_path_factory.getbasetemp())
    leaked = [pid for pid, command in _registry_processes() if base in command]
    for pid in leaked:
        os.kill(pid, signal.SIGTERM)
    assert not leaked, f"the tests left registry processes {leaked} running (now stopped)"


def _registry_processes() -> list[tuple[int, str]]:
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            command = cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if "registry serve" in command:
            found.append((int(cmdline.parent.name), command))
    return found


# Where a stray default would write: the checkout's top level (build/, caches), the model
# registry, the delivery state, the data cache.
WATCHED = [
    ROOT / folder
    for folder in (
        ".", "models", "models/versions", ".delivery", ".delivery/builds",
        ".delivery/deployments", ".delivery/evidence", ".delivery/ledger", ".cache/datasets",
    )
]  # fmt: skip


def _listing(directory: Path) -> set[str]:
    try:
        return {path.name for path in directory.iterdir()}
    except FileNotFoundError:
        return set()


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--base-url",
        default=None,
        help="Run the integration tests against this already running service "
        "instead of starting one (tests that need their own server are skipped).",
    )
    parser.addoption(
        "--expected-model-sha256",
        default=None,
        help="Smoke checks: the model sha256 the service must report (the image's label).",
    )
    parser.addoption(
        "--expected-environment",
        default=None,
        help="Smoke checks: the environment the service must report.",
    )
    parser.addoption(
        "--uat-expectations",
        default=str(Path(__file__).parent / "uat" / "expectations.yaml"),
        help="UAT checks: the expectations file (default: tests/uat/expectations.yaml).",
    )


@pytest.fixture(scope="session")
def api_session() -> Iterator[requests.Session]:
    """Requests to a deployed service, with the gates' API key where they pass one."""
    with requests.Session() as session:
        if GATE_API_KEY:
            session.headers["Authorization"] = f"Bearer {GATE_API_KEY}"
        yield session


@pytest.fixture(scope="session")
def deployed_url(request: pytest.FixtureRequest) -> str:
    """The service under check (smoke and UAT suites); they check deployments only."""
    url = request.config.getoption("--base-url")
    if not url:
        pytest.skip("checks a deployed service: pass --base-url (the gates do)")
    return url.rstrip("/")


def make_keyring(keys_dir: Path, **trust: object) -> TrustedKeys:
    """Trust as config/trust.yaml sets it, with a local key pair per test gate in `keys_dir`."""
    repository = load_trust_settings(CONFIG_DIR)
    settings = TrustSettings(
        **{"schema_version": 1, "local_keys": True, "max_clock_skew_seconds": 300, "gates": {},
           "check_environment": repository.check_environment} | trust
    )  # fmt: skip
    keyring = TrustedKeys(settings, CONFIG_DIR, keys_dir)
    for gate in TEST_GATES:
        keyring.create_local(gate)
    return keyring


def make_evidence_store(root: Path) -> EvidenceStore:
    """A store that signs with, and trusts, its own key pairs (kept beside `root`)."""
    return EvidenceStore(
        root, make_keyring(root.parent / f"{root.name}-keys"), root.parent / "pending" / root.name
    )
