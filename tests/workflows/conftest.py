"""What every act run of the workflows here starts from (tests/workflows)."""

import os
import re
import subprocess
from pathlib import Path

import pytest

from sentiment_release.delivery.config import load_delivery_settings
from sentiment_release.delivery.engine import Engine, detect_engine
from sentiment_release.delivery.errors import NoEngineError
from sentiment_release.promotion.policy import load_policy
from tests.conftest import CONFIG_DIR, FIXTURE_DATA, ROOT, train_fixture_model
from tests.container.conftest import free_ports, write_policy

ANSI = re.compile(r"\x1b\[[0-9;]*m")
SENTIMENT = str(ROOT / ".venv" / "bin" / "sentiment")


def act_engine() -> Engine:
    try:
        return detect_engine(load_delivery_settings(CONFIG_DIR).engine, tls_verify=False)
    except NoEngineError as error:
        pytest.skip(f"no container engine: {error}")


def act_environment(
    tmp: Path, engine: Engine, prefix: str, checks: dict, **policy: str
) -> dict[str, str]:
    """The environment `sentiment github act` runs in (the jobs inherit it): this
    machine's, without its own DELIVERY_, SENTIMENT_ and GITHUB_ settings; a registry of
    the run's, its own container names and ports, the fixture data, gates the fixture model
    passes (`checks`, `policy` settings), and a champion pushed to that registry and pinned,
    as on GitHub: the jobs pull it."""
    names = load_policy(CONFIG_DIR / "promotion.yaml").names
    registry_port, *ports = free_ports(1 + len(names))
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("DELIVERY_", "SENTIMENT_", "GITHUB_"))}  # fmt: skip
    env.pop("APP_ENV", None)
    policy_file = write_policy(tmp / "policy.yaml", dict(zip(names, ports, strict=True)), checks,
                               **policy)  # fmt: skip
    env.update(
        DELIVERY_ENGINE=engine.name,
        DELIVERY_STATE_DIR=str(tmp / "harness-state"),
        DELIVERY_REGISTRY__ADDRESS=f"127.0.0.1:{registry_port}",
        DELIVERY_DEPLOY__LOCAL__CONTAINER_PREFIX=prefix,
        SENTIMENT_DATA_DIR=str(FIXTURE_DATA),
        SENTIMENT_TRAINING__QUALITY_GATE='{"min_accuracy": 0, "min_f1": 0, "min_roc_auc": 0}',
        SENTIMENT_POLICY_FILE=str(policy_file),
        SENTIMENT_CHAMPION_FILE=str(tmp / "champion.yaml"),
    )
    if os.environ.get("DELIVERY_BUILD__BASE_IMAGE"):
        env["DELIVERY_BUILD__BASE_IMAGE"] = os.environ["DELIVERY_BUILD__BASE_IMAGE"]
    models = tmp / "models"
    assert train_fixture_model(models).published is not None
    subprocess.run([SENTIMENT, "models", "push", "--pin"], cwd=ROOT, check=True,
                   env={**env, "SENTIMENT_MODEL__BUNDLES_DIR": str(models)},
                   capture_output=True)  # fmt: skip
    return env


def clean_up(env: dict[str, str], engine: Engine, prefix: str) -> None:
    """The run's containers and registry."""
    for environment in load_policy(CONFIG_DIR / "promotion.yaml").names:
        subprocess.run([engine.binary, "rm", "--force", f"{prefix}{environment}"],
                       capture_output=True)  # fmt: skip
    subprocess.run([SENTIMENT, "registry", "stop"], env=env, cwd=ROOT, capture_output=True)
