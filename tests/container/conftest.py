"""Container tests: the real image, built once per session, pushed to a private registry,
deployed and promoted for real. Every scenario shares that one image (variants are built
FROM it in seconds).

Everything is isolated from a developer's own deployments: its own state directory,
registry port, container names, and a promotion policy whose ports are free ones and
whose gates are fitted to the fixture model (the same check kinds, smaller runs).
Skipped when no container engine answers.
"""

import copy
import os
import shutil
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from sentiment_release.delivery.api_keys import ApiKeyStore
from sentiment_release.delivery.config import load_delivery_settings
from sentiment_release.delivery.engine import Engine, detect_engine
from sentiment_release.delivery.errors import NoEngineError
from sentiment_release.delivery.records import BuildRecord, DeploymentRecord, Records
from sentiment_release.gates.evidence import EvidenceRecord
from sentiment_release.gates.evidence_store import EvidenceStore
from sentiment_release.gates.trust import TrustedKeys, load_trust_settings
from sentiment_release.promotion.ledger import Ledger, LedgerEntry
from sentiment_release.promotion.policy import load_policy
from tests.conftest import CONFIG_DIR, FIXTURE_DATA, FIXTURE_UAT, LENIENT_GATE, ROOT, env_name

SENTIMENT = str(Path(sys.executable).parent / "sentiment")
PREFIX = "sentiment-pytest-"
REPOSITORY_POLICY = CONFIG_DIR / "promotion.yaml"
# The state branch of this session's promotions, removed after it.
STATE_BRANCH = f"pytest-delivery-state-{uuid.uuid4().hex[:12]}"
# The gates of the repository's policy, fitted to the fixture model and to a test's time.
FITTED_CHECKS = {
    "dev": {
        "quality": {"min_accuracy": 0, "min_f1": 0, "min_roc_auc": 0},
        "unit": {"check": "pytest", "args": ["tests/unit/test_settings.py"]},
    },
    "test": {
        "integration": {
            "check": "pytest",
            "args": ["tests/integration/test_http_api.py"],
            "needs_service": True,
        },
        "load": {
            "users": 2,
            "spawn_rate": 2,
            "run_time_seconds": 2,
            "max_failure_ratio": 0,
            "max_p95_ms": 2000,
            "max_p99_ms": 5000,
            "min_rps": 1,
        },
    },
    "stage": {
        "smoke": {},
        "uat": {
            "check": "pytest",
            "args": ["tests/uat", "--uat-expectations", str(FIXTURE_UAT)],
            "needs_service": True,
        },
        "skew": {"max_score_difference": 1e-9},
        "latency": {"requests": 20, "max_p95_ms": 1000, "max_ms": 5000},
    },
}


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def write_policy(
    path: Path,
    ports: dict[str, int],
    checks: dict[str, dict],
    only: list[str] | None = None,
    **settings: str,
) -> Path:
    """The repository's policy with these ports and these environments' checks (and only
    these environments, when `only` names them), top-level `settings` changed. Its state
    branch is the session's own: every signing step commits to it, and the checkout's
    real one witnesses the checkout's real state."""
    policy = {**yaml.safe_load(REPOSITORY_POLICY.read_text()), "state_branch": STATE_BRANCH,
              **settings}  # fmt: skip
    if only:
        policy["environments"] = [e for e in policy["environments"] if e["name"] in only]
    for environment in policy["environments"]:
        environment["port"] = ports[environment["name"]]
        environment["checks"] = checks.get(environment["name"], environment["checks"])
    path.write_text(yaml.safe_dump(policy, sort_keys=False))
    return path


@pytest.fixture(scope="session")
def engine() -> Engine:
    delivery = load_delivery_settings(CONFIG_DIR)
    try:
        return detect_engine(delivery.engine, tls_verify=False)
    except NoEngineError as error:
        pytest.skip(f"no container engine: {error}")


class Delivery:
    """Runs `sentiment` commands in the isolated setting and reads what they recorded."""

    def __init__(self, env: dict[str, str], ports: dict[str, int], state_dir: Path, tmp: Path):
        self.env = env
        self.ports = ports
        self.state_dir = state_dir
        self.tmp = tmp

    def run(self, *args: str, check: bool = True, **env: str) -> subprocess.CompletedProcess:
        done = subprocess.run(
            [SENTIMENT, *args], cwd=ROOT, env={**self.env, **env},
            capture_output=True, text=True, timeout=1200, check=False,
        )  # fmt: skip
        if check and done.returncode != 0:
            pytest.fail(f"sentiment {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
        return done

    def policy(
        self, name: str, only: list[str] | None = None, settings: dict | None = None,
        **checks: dict,
    ) -> str:  # fmt: skip
        """A policy file like the session's, with some environments' checks replaced."""
        fitted = copy.deepcopy(FITTED_CHECKS)
        fitted.update(checks)
        path = self.tmp / f"{name}.yaml"
        return str(write_policy(path, self.ports, fitted, only, **(settings or {})))

    def url(self, environment: str) -> str:
        return f"http://127.0.0.1:{self.ports[environment]}"

    def container(self, environment: str) -> str:
        return f"{PREFIX}{environment}"

    def headers(self, environment: str) -> dict[str, str]:
        """What a request carries to be let in: the gates' key where one is required."""
        key = ApiKeyStore(self.state_dir / "api-keys").gate_key(environment)
        return {"Authorization": f"Bearer {key}"} if key else {}

    def deployment(self, environment: str) -> DeploymentRecord:
        record = Records(self.state_dir).deployment(environment)
        assert record is not None, f"no deployment record of {environment}"
        return record

    def evidence(self, gate: str | None = None) -> list[EvidenceRecord]:
        keyring = TrustedKeys(load_trust_settings(CONFIG_DIR), CONFIG_DIR, self.state_dir / "keys")
        pending = self.state_dir / "pending" / "evidence"
        records = EvidenceStore(self.state_dir / "evidence", keyring, pending).records()
        return [record for record in records if gate in (None, record.gate)]

    def ledger(self, environment: str) -> list[LedgerEntry]:
        """The outcomes in the ledger, each after its "deploying" entry."""
        keyring = TrustedKeys(load_trust_settings(CONFIG_DIR), CONFIG_DIR, self.state_dir / "keys")
        entries = Ledger(self.state_dir / "ledger", keyring, self.state_dir / "pending").entries(
            environment
        )
        assert all(entry.result == "deploying" for entry in entries[::2]), entries
        return entries[1::2]


def service_config_without_drain(target: Path) -> Path:
    """The service's config, but with no drain on SIGTERM: stage and prod would otherwise
    serve 5 s more each time a promotion or rollback replaces them (draining has tests of
    its own, against gunicorn)."""
    shutil.copytree(CONFIG_DIR / "service", target)
    for path in target.glob("*.yaml"):
        document = yaml.safe_load(path.read_text()) or {}
        if document.get("gunicorn", {}).get("drain_seconds"):
            document["gunicorn"]["drain_seconds"] = 0
            path.write_text(yaml.safe_dump(document))
    return target


@pytest.fixture(scope="session")
def delivery(
    engine: Engine, trained_registry: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Delivery]:
    tmp = tmp_path_factory.mktemp("delivery")
    state_dir = tmp / "state"
    names = load_policy(REPOSITORY_POLICY).names
    registry_port, *env_ports = free_ports(1 + len(names))
    ports = dict(zip(names, env_ports, strict=True))
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("SENTIMENT_", "DELIVERY_"))},
        "SENTIMENT_MODEL__BUNDLES_DIR": str(trained_registry),
        "SENTIMENT_DATA_DIR": str(FIXTURE_DATA),
        **{env_name(key): str(value) for key, value in LENIENT_GATE.items()},
        "SENTIMENT_POLICY_FILE": str(write_policy(tmp / "policy.yaml", ports, FITTED_CHECKS)),
        "SENTIMENT_CHAMPION_FILE": str(tmp / "champion.yaml"),
        "SENTIMENT_CONFIG_DIR": str(service_config_without_drain(tmp / "service-config")),
        "DELIVERY_ENGINE": engine.name,
        "DELIVERY_STATE_DIR": str(state_dir),
        "DELIVERY_REGISTRY__ADDRESS": f"127.0.0.1:{registry_port}",
        "DELIVERY_DEPLOY__LOCAL__CONTAINER_PREFIX": PREFIX,
    }
    env.pop("APP_ENV", None)
    base_image = os.environ.get("DELIVERY_BUILD__BASE_IMAGE")
    if base_image:
        env["DELIVERY_BUILD__BASE_IMAGE"] = base_image
    tool = Delivery(env, ports, state_dir, tmp)
    tool.run("keys", "create")  # as `make keys` does before a pipeline
    tool.run("api-keys", "gate")  # and `make api-keys`
    yield tool
    for environment in ports:
        # At once: stage's and prod's containers would drain for seconds each when stopped.
        subprocess.run([engine.binary, "rm", "--force", "--time", "0", tool.container(environment)],
                       capture_output=True, check=False)  # fmt: skip
    tool.run("registry", "stop", check=False)
    subprocess.run(["git", "-C", str(ROOT), "branch", "-D", STATE_BRANCH], capture_output=True,
                   check=False)  # fmt: skip


@pytest.fixture(scope="session")
def built(delivery: Delivery, engine: Engine) -> Iterator[tuple[BuildRecord, str]]:
    """The record of the session's one real build and the command's output (the image is
    removed from the host afterwards). As in CI, the model is pushed to the registry and
    pinned, and the build pulls the pinned digest into a registry that lacks it."""
    delivery.run("models", "push", "--pin")
    empty = delivery.tmp / "models-of-the-build"
    done = delivery.run("build", SENTIMENT_MODEL__BUNDLES_DIR=str(empty))
    record = Records(delivery.state_dir).latest_build()
    assert record is not None
    yield record, done.stdout
    for reference in (record.tag, record.image):
        subprocess.run([engine.binary, "rmi", "--force", reference], capture_output=True)


def variant(engine: Engine, delivery: Delivery, built: BuildRecord, name: str, steps: str,
            files: dict[str, str] | None = None, **labels: str) -> str:  # fmt: skip
    """An image FROM the session's image plus `steps`, pushed; its pinned reference."""
    lines = [f"FROM {built.tag}", steps, *(f'LABEL {k}="{v}"' for k, v in labels.items())]
    context = delivery.tmp / f"variant-{name}"
    context.mkdir()
    (context / "Dockerfile").write_text("\n".join(lines) + "\n")
    for file_name, content in (files or {}).items():
        (context / file_name).write_text(content)
    tag = f"{delivery.env['DELIVERY_REGISTRY__ADDRESS']}/sentiment-api:pytest-{name}"
    engine.build(context, tag, {}, {})
    digest = engine.push(tag, context / "digest")
    return f"{delivery.env['DELIVERY_REGISTRY__ADDRESS']}/sentiment-api@{digest}"


def head_commit() -> str:
    return subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True,
                          text=True, check=True).stdout.strip()  # fmt: skip


def status(delivery: Delivery) -> dict[str, dict[str, Any]]:
    import json

    rows = json.loads(delivery.run("status", "--json").stdout)
    return {row["environment"]: row for row in rows}
