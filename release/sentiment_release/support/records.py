"""Typed JSON records (builds, deployments, evidence, ledger entries): one schema each, a
schema version in each, and an error that names the file (and line) when one is damaged."""

import json
from pathlib import Path
from typing import Literal, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from sentiment_release.support.errors import ReleaseError

SCHEMA_VERSION = 1
R = TypeVar("R", bound="Record")


class RecordError(ReleaseError):
    """A record cannot be read: not JSON, or not of its schema."""


class Record(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    # Records written before versioning had no field and are version 1.
    schema_version: Literal[1] = SCHEMA_VERSION

    def to_json(self, indent: int | None = 2) -> str:
        document = self.model_dump(mode="json")
        return json.dumps(document, indent=indent, sort_keys=True, ensure_ascii=False)


def _problems(error: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(part) for part in item['loc']) or '(record)'}: {item['msg']}"
        for item in error.errors(include_url=False)
    )


def parse_record(model: type[R], text: str, where: str) -> R:
    """`text` as a `model` record; `where` (a file, or file:line) names it in errors."""
    try:
        document = json.loads(text)
    except ValueError as error:
        raise RecordError(f"{where} is damaged: not JSON ({error})") from None
    if not isinstance(document, dict):
        raise RecordError(f"{where} is damaged: not a JSON object")
    version = document.get("schema_version", SCHEMA_VERSION)
    if version != SCHEMA_VERSION or type(version) is not int:
        raise RecordError(
            f"{where} has schema version {version!r}; this tooling reads version "
            f"{SCHEMA_VERSION} (a newer release of it wrote the record?)"
        )
    try:
        return model.model_validate(document)
    except ValidationError as error:
        raise RecordError(f"{where} is not a valid {model.__name__}: {_problems(error)}") from None


def read_record(model: type[R], path: Path) -> R | None:
    """The record at `path`; None when there is none."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except UnicodeDecodeError:
        raise RecordError(f"{path} is damaged: not UTF-8 text") from None
    except OSError as error:
        raise RecordError(f"{path} cannot be read: {error}") from None
    return parse_record(model, text, str(path))
