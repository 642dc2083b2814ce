"""Writing bundles into a model folder, beside their reading (sentiment/model/bundle.py,
sentiment/model/folder.py): publishing a newly trained model (its bytes: training
serializes it), adding one that comes from the model store, and exporting one verified
bundle into a folder of its own (what an image carries). A bundle is written into a hidden
staging directory and renamed into place, so an interrupted write leaves nothing that looks
like a version."""

import json
import shutil
import stat
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sentiment.files import atomic_write, fsync_dir, write_durably
from sentiment.model.bundle import (
    METADATA_FILE,
    MODEL_FILE,
    BundleError,
    BundleMetadata,
    CompiledFile,
    read_verified_bytes,
    read_verified_compiled,
    sha256_hex,
)
from sentiment.model.folder import VERSION_PATTERN, ModelFolder

READ_ONLY = stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH


def publish(
    registry: ModelFolder,
    model_bytes: bytes,
    fields: dict[str, Any],
    compiled_bytes: bytes | None = None,
) -> BundleMetadata:
    """Writes a new immutable bundle (with its compiled scorer, if given) and makes it
    current."""
    created_at = datetime.now(UTC)
    digest = sha256_hex(model_bytes)
    version = f"{created_at:%Y%m%dT%H%M%SZ}-{digest[:8]}"
    compiled = None if compiled_bytes is None else CompiledFile(sha256=sha256_hex(compiled_bytes))
    metadata = BundleMetadata(
        version=version, created_at=created_at, sha256=digest, compiled=compiled, **fields
    )
    document = json.dumps(metadata.model_dump(mode="json"), indent=2, sort_keys=True) + "\n"
    _write_bundle(registry, metadata, model_bytes, compiled_bytes, document.encode())
    set_current(registry, version)
    return metadata


def export(
    source: ModelFolder, version: str, target: Path, challenger: str | None = None
) -> BundleMetadata:
    """Writes a new registry at `target` holding only `version`, verified, as current (and
    a `challenger` beside it, named in CHALLENGER, where given).

    This is how a model goes into an image: one bundle (or two), readable by any user.
    """
    exported = ModelFolder(target)
    metadata = copy_bundle(source, source.resolve(version), exported)
    set_current(exported, metadata.version)
    if challenger is not None:
        copied = copy_bundle(source, source.resolve(challenger), exported)
        atomic_write(exported.challenger_file, f"{copied.version}\n".encode())
    return metadata


def add_bundle(registry: ModelFolder, document: bytes, files: dict[str, bytes]) -> BundleMetadata:
    """Writes a bundle that comes from elsewhere (the model folder), once `files` are
    exactly what the metadata `document` records. A version already here must hold the
    same bytes: one version id never names two models."""
    try:
        metadata = BundleMetadata.model_validate_json(document)
    except ValueError as error:
        raise BundleError(f"its metadata is invalid: {error}") from None
    if not VERSION_PATTERN.fullmatch(metadata.version):  # it names a directory: no "../"
        raise BundleError(f"{metadata.version!r} is not a model version id")
    expected = {metadata.model_file: metadata.sha256}
    if metadata.compiled is not None:
        expected[metadata.compiled.file] = metadata.compiled.sha256
    actual = {name: sha256_hex(data) for name, data in files.items()}
    if actual != expected:
        raise BundleError(f"its files {sorted(actual)} do not match its metadata's {expected}")
    target = registry.versions_dir / metadata.version
    if target.exists():
        if (target / METADATA_FILE).read_bytes() != document:
            raise BundleError(f"{target} holds another bundle under the same version")
        read_verified_bytes(target)  # an existing copy must still be whole
        read_verified_compiled(target, metadata)
        return metadata
    compiled = files.get(metadata.compiled.file) if metadata.compiled else None
    _write_bundle(registry, metadata, files[metadata.model_file], compiled, document)
    return metadata


def copy_bundle(source: ModelFolder, version: str, target: ModelFolder) -> BundleMetadata:
    """Adds `version` of one registry to another, verified (as a pull would)."""
    bundle_dir = source.path_of(version)
    metadata, model_bytes = read_verified_bytes(bundle_dir)
    files = {metadata.model_file: model_bytes}
    compiled = read_verified_compiled(bundle_dir, metadata)
    if metadata.compiled is not None and compiled is not None:
        files[metadata.compiled.file] = compiled
    return add_bundle(target, (bundle_dir / METADATA_FILE).read_bytes(), files)


def set_current(registry: ModelFolder, version: str) -> None:
    registry.metadata(version)  # only a real version can become current
    atomic_write(registry.current_file, f"{version}\n".encode())


def _write_bundle(
    registry: ModelFolder,
    metadata: BundleMetadata,
    model_bytes: bytes,
    compiled_bytes: bytes | None,
    document: bytes,
) -> None:
    target = registry.versions_dir / metadata.version
    if target.exists():
        raise BundleError(f"version {metadata.version} is already in {registry.versions_dir}")
    registry.versions_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=registry.versions_dir))
    try:
        staging.chmod(0o755)  # mkdtemp's 0700 would hide the bundle from a service user
        files = {MODEL_FILE: model_bytes, METADATA_FILE: document}
        if metadata.compiled is not None and compiled_bytes is not None:
            files[metadata.compiled.file] = compiled_bytes
        for name, data in files.items():
            write_durably(staging / name, data)
            (staging / name).chmod(READ_ONLY)
        staging.rename(target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    fsync_dir(registry.versions_dir)
