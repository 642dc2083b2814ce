"""Every overlay renders, passes its checks and the Kubernetes schema; broken ones do not."""

import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from sentiment_release.delivery import manifests
from sentiment_release.delivery.errors import ManifestError
from sentiment_release.promotion.policy import load_policy
from tests.conftest import ROOT, SERVICE_CONFIG_DIR

IMAGE = "127.0.0.1:5000/sentiment-api@sha256:" + "c3" * 32
ENVIRONMENTS_DIR = ROOT / "environments"
ENVIRONMENTS = load_policy(ROOT / "config" / "promotion.yaml").names


@pytest.fixture(scope="module")
def rendered() -> dict[str, str]:
    return {
        environment: manifests.render(ENVIRONMENTS_DIR, environment, IMAGE)
        for environment in ENVIRONMENTS
    }


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_each_overlay_passes_its_checks(rendered: dict[str, str], environment: str) -> None:
    assert manifests.check(environment, rendered[environment], IMAGE, SERVICE_CONFIG_DIR) == []


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_each_overlay_is_valid_kubernetes(rendered: dict[str, str], environment: str) -> None:
    assert manifests.validate_schema(rendered[environment]) == []


def test_overlays_differ_in_size_and_namespace_but_not_in_shape(rendered: dict[str, str]) -> None:
    def deployment(environment: str) -> dict:
        documents = yaml.safe_load_all(rendered[environment])
        return next(d for d in documents if d and d["kind"] == "Deployment")

    dev, prod = deployment("dev"), deployment("prod")
    assert (dev["spec"]["replicas"], prod["spec"]["replicas"]) == (1, 3)
    assert (dev["metadata"]["namespace"], prod["metadata"]["namespace"]) == (
        "sentiment-dev",
        "sentiment-prod",
    )
    # Where API keys are required (prod), their Secret is mounted: the one other difference.
    prod_pod = prod["spec"]["template"]["spec"]
    assert [v for v in prod_pod["volumes"] if v["name"] == "api-keys"]
    prod_pod["volumes"] = [v for v in prod_pod["volumes"] if v["name"] != "api-keys"]
    mounts = prod_pod["containers"][0]["volumeMounts"]
    prod_pod["containers"][0]["volumeMounts"] = [m for m in mounts if m["name"] != "api-keys"]
    for spec in (dev, prod):
        spec["spec"].pop("replicas")
        spec["metadata"].pop("namespace")
        spec["metadata"]["labels"].pop("app.kubernetes.io/instance")
        container = spec["spec"]["template"]["spec"]["containers"][0]
        container.pop("resources")
        container.pop("env")
        volumes = spec["spec"]["template"]["spec"]["volumes"]
        next(v for v in volumes if "configMap" in v)["configMap"].pop("name")
    assert dev == prod


def test_the_service_is_told_its_image_for_the_audit(rendered: dict[str, str]) -> None:
    for environment, text in rendered.items():
        [deployment] = [d for d in yaml.safe_load_all(text) if d and d["kind"] == "Deployment"]
        env = deployment["spec"]["template"]["spec"]["containers"][0]["env"]
        assert {"name": "SENTIMENT_BUILD__IMAGE", "value": IMAGE} in env, environment


def test_a_schema_error_is_reported() -> None:
    broken = manifests.render(ENVIRONMENTS_DIR, "test", IMAGE).replace(
        "containerPort: 8000", "containerPort: http"
    )
    assert manifests.validate_schema(broken)


def test_an_unpinned_image_cannot_be_rendered() -> None:
    with pytest.raises(ManifestError, match="not pinned by digest"):
        manifests.render(ENVIRONMENTS_DIR, "stage", "127.0.0.1:5000/sentiment-api:latest")


def _mutated(environment: str, change: Callable[[dict], None]) -> str:
    documents = [
        d for d in yaml.safe_load_all(manifests.render(ENVIRONMENTS_DIR, environment, IMAGE)) if d
    ]
    for document in documents:
        change(document)
    return yaml.safe_dump_all(documents)


def _container(document: dict) -> dict | None:
    if document["kind"] != "Deployment":
        return None
    return document["spec"]["template"]["spec"]["containers"][0]


def _set_image(document: dict) -> None:
    if container := _container(document):
        container["image"] = "127.0.0.1:5000/sentiment-api:latest"


def _probe_on_missing_route(document: dict) -> None:
    if container := _container(document):
        container["readinessProbe"]["httpGet"]["path"] = "/ready"


def _liveness_on_readyz(document: dict) -> None:
    if container := _container(document):
        container["livenessProbe"]["httpGet"]["path"] = "/readyz"


def _wrong_app_env(document: dict) -> None:
    if container := _container(document):
        container["env"][0]["value"] = "dev"


def _edited_config(document: dict) -> None:
    if document["kind"] == "ConfigMap":
        document["data"]["base.yaml"] += "# edited by hand\n"


def _unmounted_config(document: dict) -> None:
    if container := _container(document):
        container["volumeMounts"] = [m for m in container["volumeMounts"] if m["name"] != "config"]


def _unmounted_keys(document: dict) -> None:
    if container := _container(document):
        container["volumeMounts"] = [
            m for m in container["volumeMounts"] if m["name"] != "api-keys"
        ]


def _keys_from_another_secret(document: dict) -> None:
    if document["kind"] == "Deployment":
        for volume in document["spec"]["template"]["spec"]["volumes"]:
            if volume["name"] == "api-keys":
                volume["secret"]["secretName"] = "someone-elses"


def _unmounted_monitoring(document: dict) -> None:
    if container := _container(document):
        container["volumeMounts"] = [
            m for m in container["volumeMounts"] if m["name"] != "monitoring"
        ]


def _unbounded_monitoring(document: dict) -> None:
    if document["kind"] == "Deployment":
        for volume in document["spec"]["template"]["spec"]["volumes"]:
            if volume["name"] == "monitoring":
                del volume["emptyDir"]["sizeLimit"]


def _pdb_selects_nothing(document: dict) -> None:
    if document["kind"] == "PodDisruptionBudget":
        document["spec"]["selector"]["matchLabels"] = {"app": "other"}


def _root_allowed(document: dict) -> None:
    if document["kind"] == "Deployment":
        del document["spec"]["template"]["spec"]["securityContext"]["runAsNonRoot"]


def _no_hpa(document: dict) -> None:
    if document["kind"] == "HorizontalPodAutoscaler":
        document["kind"] = "Unknown"


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (_set_image, "is not pinned by digest"),
        (_probe_on_missing_route, "/ready is not a GET endpoint of the service"),
        (_liveness_on_readyz, "livenessProbe checks /readyz, expected /healthz"),
        (_wrong_app_env, "APP_ENV is 'dev', expected 'prod'"),
        (_edited_config, "ConfigMap key base.yaml differs"),
        (_unmounted_config, "not mounted at /app/config"),
        (_unmounted_keys, "the Secret sentiment-api-keys is not mounted at /run/secrets"),
        (_keys_from_another_secret, "the Secret sentiment-api-keys is not mounted"),
        (_unmounted_monitoring, "no writable volume is mounted at /var/lib/sentiment"),
        (_unbounded_monitoring, "(an emptyDir) has no sizeLimit"),
        (_pdb_selects_nothing, "PodDisruptionBudget selector"),
        (_root_allowed, "may run as root"),
        (_no_hpa, "expected one HorizontalPodAutoscaler, found 0"),
    ],
)
def test_a_broken_manifest_is_caught(change: Callable[[dict], None], problem: str) -> None:
    problems = manifests.check("prod", _mutated("prod", change), IMAGE, SERVICE_CONFIG_DIR)
    assert any(problem in found for found in problems), problems


def test_the_config_map_follows_the_config_files(tmp_path: Path) -> None:
    """A config change reaches the rendered ConfigMap (no stale copy lives in environments/)."""
    copy = tmp_path / "repo"
    for name in ("config", "environments"):
        shutil.copytree(ROOT / name, copy / name)
    (copy / "config" / "service" / "stage.yaml").write_text("service:\n  max_batch_size: 8\n")
    rendered = manifests.render(copy / "environments", "stage", IMAGE)
    config_map = next(d for d in yaml.safe_load_all(rendered) if d["kind"] == "ConfigMap")
    assert config_map["data"]["stage.yaml"] == "service:\n  max_batch_size: 8\n"
    assert manifests.check("stage", rendered, IMAGE, copy / "config" / "service") == []
    assert manifests.check("stage", rendered, IMAGE, SERVICE_CONFIG_DIR) != []


def test_hadolint_passes_on_the_dockerfile() -> None:
    hadolint = Path(sys.executable).parent / "hadolint"
    done = subprocess.run(
        [str(hadolint), "--no-color", str(ROOT / "Dockerfile")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_hadolint_would_catch_a_regression(tmp_path: Path) -> None:
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text((ROOT / "Dockerfile").read_text().replace("USER 10001:10001", "USER app"))
    hadolint = Path(sys.executable).parent / "hadolint"
    done = subprocess.run(
        [str(hadolint), "--no-color", str(dockerfile)], capture_output=True, text=True, check=False
    )
    assert done.returncode != 0
