"""`build`: model bundle + locked wheels + config -> one image, pushed, recorded by digest.

The image gets the serving runtime only (the project's root distribution and the
runtime lock); the release tooling never enters it. A bundle with a compiled scorer is
served without scikit-learn, numpy, scipy or unpickling (requirements/runtime.lock); one
without gets them (runtime-scikit-learn.lock).
"""

import hashlib
import os
import shutil
import sys
import tempfile
import time
import zipfile
from collections.abc import Iterable
from importlib.metadata import version as package_version
from pathlib import Path

from sentiment.model import ModelFolder
from sentiment.model.publish import export
from sentiment_release.delivery import labels
from sentiment_release.delivery.config import DeliverySettings
from sentiment_release.delivery.engine import Engine
from sentiment_release.delivery.errors import DeliveryError, EngineCommandError, ImageNotFoundError
from sentiment_release.delivery.records import BuildRecord, BuildSeconds, ModelRef, Records
from sentiment_release.delivery.service_config import image_files
from sentiment_release.support.clock import timestamp, utc_now
from sentiment_release.support.git import Git, revision
from sentiment_release.support.process import CommandError, run
from sentiment_release.support.project import Project

RUNTIME_DISTRIBUTION = "sentiment-service"
# What the runtime's wheel is built from, and the only top-level names it may hold.
RUNTIME_SOURCES = ("pyproject.toml", "README.md", "sentiment")
RUNTIME_PACKAGES = {"sentiment"}


def fill_wheelhouse(delivery: DeliverySettings, lock: Path) -> Path:
    """Wheels for every locked package, for the image's platform; reused while the lock holds.

    Pip inside the build cannot reach a package index on every host, so the host
    downloads them and the build installs offline.
    """
    lock_digest = hashlib.sha256(lock.read_bytes()).hexdigest()[:16]
    wheelhouse = delivery.state_dir / "wheelhouse" / lock_digest
    if wheelhouse.is_dir():
        return wheelhouse
    wheelhouse.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=wheelhouse.parent))
    platforms = [flag for p in delivery.build.platforms for flag in ("--platform", p)]
    try:
        _pip(
            "download", "--quiet", "--dest", str(staging), "--requirement", str(lock),
            "--only-binary=:all:", "--implementation", "cp",
            "--python-version", delivery.build.python_version, *platforms,
        )  # fmt: skip
        staging.rename(wheelhouse)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return wheelhouse


def assemble_context(
    delivery: DeliverySettings,
    project: Project,
    registry: ModelFolder,
    version: str,
    wheelhouse: Path,
    lock: Path,
    environments: Iterable[str],
    challenger: str | None = None,
) -> tuple[Path, ModelRef]:
    """The build context: Dockerfile, wheels/ (`lock`, as runtime.lock), config/, models/
    (the bundle `version`, and the `challenger` beside it where there is one). Nothing
    else."""
    context = delivery.state_dir / "context"
    shutil.rmtree(context, ignore_errors=True)
    wheels = context / "wheels"
    wheels.mkdir(parents=True)
    shutil.copy2(project.dockerfile, context / "Dockerfile")
    for wheel in wheelhouse.iterdir():
        _link_or_copy(wheel, wheels / wheel.name)
    shutil.copy2(lock, wheels / "runtime.lock")
    runtime_wheel(project.root, wheels)

    (context / "config").mkdir()
    for path in image_files(project.service_config_dir, environments):
        shutil.copy2(path, context / "config" / path.name)
    metadata = export(registry, version, context / "models", challenger)
    return context, ModelRef(version=metadata.version, sha256=metadata.sha256)


def runtime_wheel(root: Path, wheels: Path) -> Path:
    """The serving runtime's own wheel, built from a clean copy of its sources (a build
    in the checkout would reuse whatever an earlier build left in build/), and checked to
    hold the runtime's packages and nothing else."""
    with tempfile.TemporaryDirectory(prefix="runtime-") as scratch:
        for name in RUNTIME_SOURCES:
            source = root / name
            if source.is_dir():
                shutil.copytree(source, Path(scratch) / name,
                                ignore=shutil.ignore_patterns("__pycache__"))  # fmt: skip
            else:
                shutil.copy2(source, Path(scratch) / name)
        built = Path(scratch) / "dist"
        _pip("wheel", "--quiet", "--no-deps", "--wheel-dir", str(built), scratch)
        [wheel] = built.glob("*.whl")
        with zipfile.ZipFile(wheel) as archive:
            tops = {name.split("/", 1)[0] for name in archive.namelist()}
        strays = sorted(top for top in tops - RUNTIME_PACKAGES if not top.endswith(".dist-info"))
        if strays:
            raise DeliveryError(f"the runtime's wheel holds {strays}: only the runtime goes in")
        return Path(shutil.copy2(wheel, wheels / wheel.name))


def build_image(
    engine: Engine,
    delivery: DeliverySettings,
    project: Project,
    registry: ModelFolder,
    records: Records,
    environments: Iterable[str],
    model_version: str = "current",
    model_digest: str | None = None,
    challenger: ModelRef | None = None,
) -> BuildRecord:
    """Builds, pushes and records the image of the bundle `model_version` (with its
    digest in the model repository, when it came from there); the record (digest, size,
    labels, timings)."""
    started = time.monotonic()
    _ensure_base_image(engine, delivery.build.base_image)
    version = registry.resolve(model_version)  # once: the lock and the bundle must agree
    bundle = registry.metadata(version)
    # A compiled scorer serves without scikit-learn, numpy, scipy or any unpickling.
    lock = project.runtime_lock(scikit_learn=bundle.compiled is None)
    wheelhouse = fill_wheelhouse(delivery, lock)
    context, model = assemble_context(
        delivery, project, registry, version, wheelhouse, lock, environments,
        challenger.version if challenger else None,
    )  # fmt: skip
    model = model.model_copy(update={"digest": model_digest})

    source = Git(project.root).source()
    built_at = timestamp(utc_now())
    version = package_version(RUNTIME_DISTRIBUTION)
    tag = f"{delivery.registry.image_name}:{revision(source.commit[:12], source.dirty)}"
    image_labels = labels.image_labels(
        source.revision, source.tree, version, built_at, model.version, model.sha256,
        model.digest, challenger,
    )  # fmt: skip
    build_started = time.monotonic()
    engine.build(
        context,
        tag,
        {
            "BASE_IMAGE": delivery.build.base_image,
            "GIT_COMMIT": source.revision,
            "BUILD_ID": f"{version}+{built_at}",
        },
        image_labels,
    )
    build_seconds = time.monotonic() - build_started
    details = engine.image_inspect(tag)

    push_started = time.monotonic()
    digest = engine.push(tag, context / "digest")
    push_seconds = time.monotonic() - push_started
    size_bytes = int(details["Size"])
    record = BuildRecord(
        digest=digest,
        image=f"{delivery.registry.image_name}@{digest}",
        tag=tag,
        size_bytes=size_bytes,
        size_mb=round(size_bytes / 1e6, 1),
        size_budget_mb=delivery.build.size_budget_mb,
        labels=labels.of_image(details),
        model=model,
        challenger=challenger,
        git_commit=source.commit,
        git_dirty=source.dirty,
        source_tree=source.tree,
        version=version,
        base_image=delivery.build.base_image,
        engine=engine.name,
        built_at=built_at,
        seconds=BuildSeconds(
            image_build=round(build_seconds, 1),
            push=round(push_seconds, 1),
            total=round(time.monotonic() - started, 1),
        ),
    )
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
    try:
        run([sys.executable, "-m", "pip", "--disable-pip-version-check", *args], timeout=1800)
    except CommandError as error:
        raise DeliveryError(f"pip {args[0]}: {error}") from None


def _link_or_copy(source: Path, target: Path) -> None:
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)
