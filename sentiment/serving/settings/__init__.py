"""Layered configuration: config/service/base.yaml -> <APP_ENV>.yaml -> SENTIMENT_* variables."""

from sentiment.serving.settings.loader import ConfigError, config_files, environments, load_settings
from sentiment.serving.settings.schema import Settings

__all__ = ["ConfigError", "Settings", "config_files", "environments", "load_settings"]
