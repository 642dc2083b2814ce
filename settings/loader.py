"""Reads the YAML layers, applies environment overrides and validates the result."""

import os
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from settings.schema import Settings

ENVIRONMENTS = ("dev", "test", "stage", "prod")
DEFAULT_CONFIG_DIR = Path("config")


class ConfigError(Exception):
    """The configuration cannot be used; the message names the key at fault."""


def load_settings(environment: str | None = None, config_dir: Path | None = None) -> Settings:
    """Effective settings for `environment` (default: $APP_ENV, else dev)."""
    environment = environment or os.environ.get("APP_ENV") or "dev"
    if environment not in ENVIRONMENTS:
        raise ConfigError(
            f"APP_ENV={environment!r} is not an environment; "
            f"choose one of {', '.join(ENVIRONMENTS)}"
        )
    if "SENTIMENT_ENVIRONMENT" in os.environ:
        raise ConfigError("SENTIMENT_ENVIRONMENT is not an override; set APP_ENV instead")
    config_dir = config_dir or Path(os.environ.get("SENTIMENT_CONFIG_DIR", DEFAULT_CONFIG_DIR))

    layers = [config_dir / "base.yaml", config_dir / f"{environment}.yaml"]
    merged: dict[str, Any] = {}
    for path in layers:
        merged = _deep_merge(merged, read_yaml(path))
    merged["environment"] = environment

    try:
        return Settings(**merged)
    except ValidationError as error:
        sources = " + ".join(str(p) for p in layers) + " + SENTIMENT_* variables"
        raise ConfigError(f"invalid configuration ({sources}):\n{describe_errors(error)}") from None


def read_yaml(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise ConfigError(f"config file {path} is not valid YAML: {error}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a mapping at the top level")
    return data


def _deep_merge(base: dict[str, Any], overlay: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in overlay.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
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
