"""Fixtures shared by unit and integration tests: config, fixture data, a tiny trained model."""

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from model_registry import ModelRegistry
from settings import Settings, load_settings

ROOT = Path(__file__).resolve().parent.parent
CONFIG_DIR = ROOT / "config"
FIXTURE_DATA = Path(__file__).resolve().parent / "fixtures" / "data"

# The fixture data is tiny, so the real quality gate would (rightly) reject its model.
LENIENT_GATE = {
    "training.quality_gate.min_accuracy": 0,
    "training.quality_gate.min_f1": 0,
    "training.quality_gate.min_roc_auc": 0,
}


@contextmanager
def repository_config_only() -> Iterator[None]:
    """Unit and integration tests check the repository's own config: overrides from the
    shell (SENTIMENT_*, DELIVERY_*, APP_ENV; `make act` hands its own to every job) are
    set aside while they run."""
    with pytest.MonkeyPatch.context() as patch:
        for name in list(os.environ):
            if name.startswith(("SENTIMENT_", "DELIVERY_")) or name == "APP_ENV":
                patch.delenv(name)
        yield


def env_name(key: str) -> str:
    """The environment variable that overrides a dotted config key."""
    return "SENTIMENT_" + key.upper().replace(".", "__")


def make_settings(environment: str = "dev", **overrides: object) -> Settings:
    """Settings for `environment` with dotted keys overridden the way a user would."""
    with pytest.MonkeyPatch.context() as patch:
        for key, value in overrides.items():
            patch.setenv(env_name(key), str(value))
        return load_settings(environment, config_dir=CONFIG_DIR)


@pytest.fixture(scope="session")
def trained_registry(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A registry holding one model trained on the fixture data (trained once per session)."""
    from training.train import train

    registry_dir = tmp_path_factory.mktemp("registry")
    settings = make_settings(**LENIENT_GATE, **{"model.registry_dir": registry_dir})
    result = train(settings, FIXTURE_DATA)
    assert result.published is not None
    return registry_dir


@pytest.fixture
def registry_copy(trained_registry: Path, tmp_path: Path) -> ModelRegistry:
    """A private copy of the trained registry, for tests that damage it."""
    import shutil

    target = tmp_path / "registry"
    shutil.copytree(trained_registry, target)
    for path in target.rglob("*"):
        path.chmod(path.stat().st_mode | 0o200)
    return ModelRegistry(target)


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
def deployed_url(request: pytest.FixtureRequest) -> str:
    """The service under check (smoke and UAT suites); they check deployments only."""
    url = request.config.getoption("--base-url")
    if not url:
        pytest.skip("checks a deployed service: pass --base-url (the gates do)")
    return url.rstrip("/")
