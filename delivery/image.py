"""`build`: model bundle + locked wheels + config -> one image, pushed, recorded by digest."""

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from importlib.metadata import version as package_version
from pathlib import Path
from typing import Any

from delivery.config import DeliverySettings
from delivery.engine import Engine
from delivery.errors import DeliveryError, EngineCommandError, ImageNotFoundError
from delivery.records import Records
from delivery.source import read_source
from model_registry import ModelRegistry

ROOT = Path(__file__).resolve().parent.parent
RUNTIME_LOCK = ROOT / "requirements" / "runtime.lock"
DOCKERFILE = ROOT / "Dockerfile"
CONFIG_FILES = ("base.yaml", "dev.yaml", "test.yaml", "stage.yaml", "prod.yaml")
LABEL_PREFIX = "io.github.sentiment-mlops"


def fill_wheelhouse(delivery: DeliverySettings) -> Path:
    """Wheels for every locked package, for the image's platform; reused while the lock holds.

    Pip inside the build cannot reach a package index on every host, so the host
    downloads them and the build installs offline.
    """
    lock_digest = hashlib.sha256(RUNTIME_LOCK.read_bytes()).hexdigest()[:16]
    wheelhouse = delivery.state_dir / "wheelhouse" / lock_digest
    if wheelhouse.is_dir():
        return wheelhouse
    wheelhouse.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=wheelhouse.parent))
    platforms = [flag for p in delivery.build.platforms for flag in ("--platform", p)]
    try:
        _pip(
            "download", "--quiet", "--dest", str(staging), "--requirement", str(RUNTIME_LOCK),
            "--only-binary=:all:", "--implementation", "cp",
            "--python-version", delivery.build.python_version, *platforms,
        )  # fmt: skip
        staging.rename(wheelhouse)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return wheelhouse


def assemble_context(
    delivery: DeliverySettings, registry: ModelRegistry, wheelhouse: Path
) -> tuple[Path, dict[str, Any]]:
    """The build context: Dockerfile, wheels/, config/, models/ (one bundle). Nothing else."""
    context = delivery.state_dir / "context"
    shutil.rmtree(context, ignore_errors=True)
    wheels = context / "wheels"
    wheels.mkdir(parents=True)
    shutil.copy2(DOCKERFILE, context / "Dockerfile")
    for wheel in wheelhouse.iterdir():
        _link_or_copy(wheel, wheels / wheel.name)
    shutil.copy2(RUNTIME_LOCK, wheels / "runtime.lock")
    _pip("wheel", "--quiet", "--no-deps", "--wheel-dir", str(wheels), str(ROOT))

    (context / "config").mkdir()
    for name in CONFIG_FILES:
        shutil.copy2(ROOT / "config" / name, context / "config" / name)
    metadata = registry.export("current", context / "models")
    return context, {"version": metadata.version, "sha256": metadata.sha256}


def build_image(
    engine: Engine, delivery: DeliverySettings, registry: ModelRegistry, records: Records
) -> dict[str, Any]:
    """Builds, pushes and records the image; the record (digest, size, labels, timings)."""
    started = time.monotonic()
    _ensure_base_image(engine, delivery.build.base_image)
    wheelhouse = fill_wheelhouse(delivery)
    context, model = assemble_context(delivery, registry, wheelhouse)

    source = read_source()
    commit, dirty = source.commit, source.dirty
    built_at = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    project_version = package_version("sentiment-mlops")
    tag = f"{delivery.registry.image_name}:{commit[:12]}{'-dirty' if dirty else ''}"
    build_started = time.monotonic()
    engine.build(
        context,
        tag,
        {
            "BASE_IMAGE": delivery.build.base_image,
            "GIT_COMMIT": source.revision,
            "SOURCE_TREE": source.tree,
            "VERSION": project_version,
            "BUILD_TIME": built_at,
            "MODEL_VERSION": model["version"],
            "MODEL_SHA256": model["sha256"],
        },
    )
    build_seconds = time.monotonic() - build_started
    details = engine.image_inspect(tag)

    push_started = time.monotonic()
    digest = engine.push(tag, context / "digest")
    push_seconds = time.monotonic() - push_started
    size_bytes = int(details["Size"])
    record = {
        "digest": digest,
        "image": f"{delivery.registry.image_name}@{digest}",
        "tag": tag,
        "size_bytes": size_bytes,
        "size_mb": round(size_bytes / 1e6, 1),
        "size_budget_mb": delivery.build.size_budget_mb,
        "labels": (details.get("Config") or {}).get("Labels") or details.get("Labels") or {},
        "model": model,
        "git_commit": commit,
        "git_dirty": dirty,
        "source_tree": source.tree,
        "version": project_version,
        "base_image": delivery.build.base_image,
        "engine": engine.name,
        "built_at": built_at,
        "seconds": {
            "image_build": round(build_seconds, 1),
            "push": round(push_seconds, 1),
            "total": round(time.monotonic() - started, 1),
        },
    }
    records.save_build(record)
    return record


def _ensure_base_image(engine: Engine, base_image: str) -> None:
    try:
        engine.image_inspect(base_image)
        return
    except ImageNotFoundError:
        pass
    try:
        engine.run("pull", "--quiet", base_image, timeout=600)
    except EngineCommandError as error:
        raise DeliveryError(
            f"base image {base_image} is not on this host and cannot be pulled ({error}).\n"
            "Without registry access, make one from Debian packages: `make base-image`, then "
            "export DELIVERY_BUILD__BASE_IMAGE=localhost/debian-python:bookworm"
        ) from None


def _pip(*args: str) -> None:
    done = subprocess.run(  # noqa: S603
        [sys.executable, "-m", "pip", "--disable-pip-version-check", *args],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise DeliveryError(f"pip {args[0]} failed:\n{done.stderr.strip()[-2000:]}")


def _link_or_copy(source: Path, target: Path) -> None:
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)
