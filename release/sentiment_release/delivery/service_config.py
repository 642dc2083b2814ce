"""The service's config files as the release tooling ships them: which files make an
environment's settings, what they hash to, and the set an image carries."""

import hashlib
from collections.abc import Iterable
from pathlib import Path

from sentiment.serving.settings import ConfigError, Settings, config_files, load_settings
from sentiment_release.delivery.errors import DeliveryError


def environment_files(config_dir: Path, environment: str) -> list[Path]:
    try:
        return config_files(config_dir, environment)
    except ConfigError as error:
        raise DeliveryError(str(error)) from None


def environment_settings(config_dir: Path, environment: str) -> Settings:
    """The settings the service will run with in `environment` (its auth, say)."""
    try:
        return load_settings(environment, config_dir)
    except ConfigError as error:
        raise DeliveryError(str(error)) from None


def config_sha256(config_dir: Path, environment: str) -> str:
    """What decides an environment's behaviour besides the image: base.yaml + <env>.yaml."""
    digest = hashlib.sha256()
    for path in environment_files(config_dir, environment):
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def image_files(config_dir: Path, environments: Iterable[str]) -> list[Path]:
    """base.yaml and one file per environment: what the image's /app/config holds."""
    files: dict[str, Path] = {}
    for environment in environments:
        for path in environment_files(config_dir, environment):
            files.setdefault(path.name, path)
    return list(files.values())
