"""Layered configuration: config/service/base.yaml -> <APP_ENV>.yaml -> SENTIMENT_* variables."""

from service.settings.loader import ConfigError, config_files, environments, load_settings
from service.settings.schema import Settings

__all__ = ["ConfigError", "Settings", "config_files", "environments", "load_settings"]
