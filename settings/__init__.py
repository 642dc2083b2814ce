"""Layered configuration: config/base.yaml -> config/<APP_ENV>.yaml -> SENTIMENT_* variables."""

from settings.loader import ENVIRONMENTS, ConfigError, load_settings
from settings.schema import Settings

__all__ = ["ENVIRONMENTS", "ConfigError", "Settings", "load_settings"]
