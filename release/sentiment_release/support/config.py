"""Reading the release tooling's YAML files (delivery, training, the promotion policy)
the way the service reads its own: validated, every bad key named with its file."""

from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel, ValidationError

from sentiment.serving.settings.loader import ConfigError, describe_errors, read_yaml
from sentiment_release.support.errors import ReleaseError

M = TypeVar("M", bound=BaseModel)


def load_yaml_settings(model: type[M], path: Path, overrides: str | None = None) -> M:
    """`path` validated as `model`; `overrides` names the variables that apply on top."""
    try:
        document = read_yaml(path)
    except ConfigError as error:
        raise ReleaseError(str(error)) from None
    try:
        return model(**document)
    except ValidationError as error:
        sources = f"{path} + {overrides}" if overrides else str(path)
        raise ReleaseError(
            f"invalid configuration ({sources}):\n{describe_errors(error)}"
        ) from None
