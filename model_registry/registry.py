"""A directory that keeps every published bundle and a pointer to the current one.

Layout:
    <root>/versions/<version>/model.joblib
    <root>/versions/<version>/metadata.json
    <root>/CURRENT                      the current version id
A bundle is written into a hidden staging directory and renamed into place, so an
interrupted publish leaves no directory that looks like a version.
"""

import json
import re
import shutil
import stat
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from atomic_files import atomic_write, fsync_dir, write_durably
from model_registry.bundle import (
    METADATA_FILE,
    MODEL_FILE,
    BundleError,
    BundleMetadata,
    BundleNotFoundError,
    LoadedBundle,
    read_bundle,
    read_metadata,
    read_verified_bytes,
    sha256_hex,
)

VERSION_PATTERN = re.compile(r"^[0-9]{8}T[0-9]{6}Z-[0-9a-f]{8}$")
READ_ONLY = stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH


class ModelRegistry:
    def __init__(self, root: Path):
        self.root = root
        self.versions_dir = root / "versions"
        self.current_file = root / "CURRENT"

    def publish(self, model_bytes: bytes, fields: dict[str, Any]) -> BundleMetadata:
        """Writes a new immutable bundle and makes it current."""
        created_at = datetime.now(UTC)
        digest = sha256_hex(model_bytes)
        version = f"{created_at:%Y%m%dT%H%M%SZ}-{digest[:8]}"
        metadata = BundleMetadata(version=version, created_at=created_at, sha256=digest, **fields)

        target = self.versions_dir / version
        if target.exists():
            raise BundleError(f"version {version} is already published")
        self.versions_dir.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=self.versions_dir))
        try:
            staging.chmod(0o755)  # mkdtemp's 0700 would hide the bundle from a service user
            write_durably(staging / MODEL_FILE, model_bytes)
            document = json.dumps(metadata.model_dump(mode="json"), indent=2, sort_keys=True)
            write_durably(staging / METADATA_FILE, document.encode() + b"\n")
            for name in (MODEL_FILE, METADATA_FILE):
                (staging / name).chmod(READ_ONLY)
            staging.rename(target)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        fsync_dir(self.versions_dir)
        self.set_current(version)
        return metadata

    def set_current(self, version: str) -> None:
        read_metadata(self.path_of(version))  # only a real version can become current
        atomic_write(self.current_file, f"{version}\n".encode())

    def current_version(self) -> str | None:
        try:
            version = self.current_file.read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            return None
        return version or None

    def resolve(self, version: str) -> str:
        """A version id from "current" or an explicit id."""
        if version != "current":
            return version
        current = self.current_version()
        if current is None:
            raise BundleNotFoundError(
                f"model registry {self.root} has no current model; run `make train` first"
            )
        return current

    def path_of(self, version: str) -> Path:
        if not VERSION_PATTERN.match(version):
            raise BundleNotFoundError(f"{version!r} is not a model version id")
        path = self.versions_dir / version
        if not path.is_dir():
            raise BundleNotFoundError(f"model version {version} is not in {self.versions_dir}")
        return path

    def load(self, version: str = "current") -> LoadedBundle:
        return read_bundle(self.path_of(self.resolve(version)))

    def export(self, version: str, target: Path) -> BundleMetadata:
        """Writes a new registry at `target` holding only `version`, verified, as current.

        This is how a model goes into an image: one bundle, readable by any user.
        """
        source = self.path_of(self.resolve(version))
        metadata, model_bytes = read_verified_bytes(source)
        exported = ModelRegistry(target)
        bundle_dir = exported.versions_dir / metadata.version
        bundle_dir.mkdir(parents=True)
        write_durably(bundle_dir / metadata.model_file, model_bytes)
        write_durably(bundle_dir / METADATA_FILE, (source / METADATA_FILE).read_bytes())
        for name in (metadata.model_file, METADATA_FILE):
            (bundle_dir / name).chmod(READ_ONLY)
        exported.set_current(metadata.version)
        return metadata

    def versions(self) -> list[BundleMetadata]:
        """Every published version, oldest first. Staging directories are not versions."""
        if not self.versions_dir.is_dir():
            return []
        found = [
            read_metadata(path)
            for path in self.versions_dir.iterdir()
            if path.is_dir() and VERSION_PATTERN.match(path.name)
        ]
        return sorted(found, key=lambda metadata: metadata.created_at)
