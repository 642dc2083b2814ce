"""A directory that keeps every published bundle and a pointer to the current one.

Layout:
    <root>/versions/<version>/model.joblib
    <root>/versions/<version>/scorer.json      the compiled scorer, where the model has one
    <root>/versions/<version>/metadata.json
    <root>/CURRENT                      the current version id
    <root>/CHALLENGER                   a challenger's version id, where there is one
This module reads it; sentiment/model/publish.py writes it (staged, then renamed
into place, so an interrupted publish leaves no directory that looks like a version).
"""

import re
from pathlib import Path

from sentiment.model.bundle import (
    BundleMetadata,
    BundleNotFoundError,
    Engine,
    LoadedBundle,
    read_bundle,
    read_metadata,
)

VERSION_PATTERN = re.compile(r"^[0-9]{8}T[0-9]{6}Z-[0-9a-f]{8}$")


class ModelFolder:
    def __init__(self, root: Path):
        self.root = root
        self.versions_dir = root / "versions"
        self.current_file = root / "CURRENT"
        self.challenger_file = root / "CHALLENGER"

    def current_version(self) -> str | None:
        return _pointed_at(self.current_file)

    def challenger_version(self) -> str | None:
        """The challenger soft-launched beside the current model (an image may carry one)."""
        return _pointed_at(self.challenger_file)

    def resolve(self, version: str) -> str:
        """A version id from "current" or an explicit id."""
        if version != "current":
            return version
        current = self.current_version()
        if current is None:
            raise BundleNotFoundError(
                f"model folder {self.root} has no current model; run `make train` first"
            )
        return current

    def path_of(self, version: str) -> Path:
        if not VERSION_PATTERN.fullmatch(version):
            raise BundleNotFoundError(f"{version!r} is not a model version id")
        path = self.versions_dir / version
        if not path.is_dir():
            raise BundleNotFoundError(f"model version {version} is not in {self.versions_dir}")
        return path

    def load(self, version: str = "current", engine: Engine = "auto") -> LoadedBundle:
        return read_bundle(self.path_of(self.resolve(version)), engine)

    def metadata(self, version: str = "current") -> BundleMetadata:
        """The bundle's metadata only (its model file is neither read nor verified)."""
        return read_metadata(self.path_of(self.resolve(version)))

    def versions(self) -> list[BundleMetadata]:
        """Every published version, oldest first. Staging directories are not versions."""
        if not self.versions_dir.is_dir():
            return []
        found = [
            read_metadata(path)
            for path in self.versions_dir.iterdir()
            if path.is_dir() and VERSION_PATTERN.fullmatch(path.name)
        ]
        return sorted(found, key=lambda metadata: metadata.created_at)


def _pointed_at(pointer: Path) -> str | None:
    """The version id a pointer file (CURRENT, CHALLENGER) holds; None without one."""
    try:
        version = pointer.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None
    return version or None
