"""Reads the YAML layers, applies environment overrides and validates the result.

An environment is a file: <config dir>/<name>.yaml on top of base.yaml. The service
knows nothing else about environments; which ones exist and how an image moves
between them is the release tooling's policy (config/promotion.yaml).
"""

import os
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from sentiment.serving.settings.schema import ENVIRONMENT_NAME, Settings

DEFAULT_CONFIG_DIR = Path("config/service")
DEFAULT_ENVIRONMENT = "dev"
BASE_FILE = "base.yaml"
# Files in the config directory that are not environments.
NOT_ENVIRONMENTS = frozenset({"base", "kustomization"})
# Set only in an environment's own file, never by a variable.
NOT_OVERRIDABLE = ("SENTIMENT_ENVIRONMENT", "SENTIMENT_SERVICE__CUSTOMER_FACING")


class ConfigError(Exception):
    """The configuration cannot be used; the message names the key at fault."""


def config_dir_from_environment() -> Path:
    return Path(os.environ.get("SENTIMENT_CONFIG_DIR", DEFAULT_CONFIG_DIR))


def environments(config_dir: Path) -> list[str]:
    """The environments that have a config file, sorted."""
    return sorted(
        path.stem
        for path in config_dir.glob("*.yaml")
        if path.stem not in NOT_ENVIRONMENTS and ENVIRONMENT_NAME.fullmatch(path.stem)
    )


def config_files(config_dir: Path, environment: str) -> list[Path]:
    """The files that make `environment`'s settings, in the order they apply."""
    if not ENVIRONMENT_NAME.fullmatch(environment) or environment in NOT_ENVIRONMENTS:
        raise ConfigError(f"{environment!r} is not an environment name")
    path = config_dir / f"{environment}.yaml"
    if not path.is_file():
        known = ", ".join(environments(config_dir)) or "none"
        raise ConfigError(
            f"{environment!r} is not an environment: {path} does not exist (environments: {known})"
        )
    return [config_dir / BASE_FILE, path]


def load_settings(environment: str | None = None, config_dir: Path | None = None) -> Settings:
    """Effective settings for `environment` (default: $APP_ENV, else dev)."""
    environment = environment or os.environ.get("APP_ENV") or DEFAULT_ENVIRONMENT
    for name in NOT_OVERRIDABLE:
        if name in os.environ:
            raise ConfigError(f"{name} is not an override; it is set by APP_ENV's own file")
    config_dir = config_dir or config_dir_from_environment()
    layers = config_files(config_dir, environment)
    merged: dict[str, Any] = {}
    for path in layers:
        merged = deep_merge(merged, read_yaml(path))
    merged["environment"] = environment

    try:
        settings = Settings(**merged)
    except ValidationError as error:
        sources = " + ".join(str(p) for p in layers) + " + SENTIMENT_* variables"
        raise ConfigError(f"invalid configuration ({sources}):\n{describe_errors(error)}") from None
    if merged.get("auth", {}).get("required") is True and not settings.auth.required:
        # A stray variable must never open an environment its files close.
        raise ConfigError(
            f"SENTIMENT_AUTH__REQUIRED cannot turn off the API keys {environment}'s config "
            "requires (a variable may only turn them on)"
        )
    return settings


def read_yaml(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except UnicodeDecodeError:
        raise ConfigError(f"config file {path} is not UTF-8 text") from None
    except OSError as error:
        raise ConfigError(f"config file {path} cannot be read: {error}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise ConfigError(f"config file {path} is not valid YAML: {error}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a mapping at the top level")
    return data


def deep_merge(base: dict[str, Any], overlay: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in overlay.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def describe_errors(error: ValidationError) -> str:
    lines = []
    for item in error.errors():
        message = item["msg"].removeprefix("Value error, ")
        if not item["loc"]:  # a whole-model rule; its message names the key itself
            lines.append(f"  {message}")
            continue
        key = ".".join(str(part) for part in item["loc"])
        got = "" if item["type"] == "missing" else f" (got {item['input']!r})"
        lines.append(f"  {key}: {message}{got}")
    return "\n".join(lines)
