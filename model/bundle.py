"""One bundle: a joblib model file and the metadata that vouches for it."""

import hashlib
import io
import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import joblib
from pydantic import BaseModel, ConfigDict, Field, ValidationError

MODEL_FILE = "model.joblib"
METADATA_FILE = "metadata.json"
FORMAT_VERSION = 1


class BundleError(Exception):
    """A bundle cannot be used."""


class BundleNotFoundError(BundleError):
    pass


class BundleIntegrityError(BundleError):
    """The bundle's files do not match what its metadata records."""


class BundleMetadata(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    format_version: int = FORMAT_VERSION
    version: str
    created_at: datetime
    git_commit: str
    model_file: Literal["model.joblib"] = MODEL_FILE
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    # Class index -> label name, e.g. {"0": "negative", "1": "positive"}.
    labels: dict[str, str]
    threshold: float = Field(gt=0, lt=1)
    dataset: dict[str, Any]
    split: dict[str, Any]
    hyperparameters: dict[str, Any]
    metrics: dict[str, Any]
    libraries: dict[str, str]


@dataclass(frozen=True)
class LoadedBundle:
    path: Path
    metadata: BundleMetadata
    model: Any


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def read_metadata(bundle_dir: Path) -> BundleMetadata:
    path = bundle_dir / METADATA_FILE
    try:
        raw = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise BundleNotFoundError(f"{path} does not exist") from None
    try:
        return BundleMetadata.model_validate(json.loads(raw))
    except (ValueError, ValidationError) as error:
        raise BundleIntegrityError(f"{path} is not valid bundle metadata: {error}") from None


def read_bundle(bundle_dir: Path) -> LoadedBundle:
    """Loads the model only after its bytes match the sha256 in the metadata.

    The bytes that were hashed are the bytes that get unpickled, so the file
    cannot be swapped between the check and the load.
    """
    metadata, data = read_verified_bytes(bundle_dir)
    model_path = bundle_dir / metadata.model_file
    try:
        model = joblib.load(io.BytesIO(data))
    except Exception as error:  # unpickling can fail in many ways; all mean "unusable"
        raise BundleIntegrityError(f"{model_path} cannot be loaded: {error}") from None
    return LoadedBundle(bundle_dir, metadata, model)


def read_verified_bytes(bundle_dir: Path) -> tuple[BundleMetadata, bytes]:
    """The metadata and the model file's bytes, once they match its recorded sha256."""
    metadata = read_metadata(bundle_dir)
    model_path = bundle_dir / metadata.model_file
    try:
        data = model_path.read_bytes()
    except FileNotFoundError:
        raise BundleNotFoundError(f"{model_path} does not exist") from None
    actual = sha256_hex(data)
    if actual != metadata.sha256:
        raise BundleIntegrityError(
            f"{model_path} has sha256 {actual} but its metadata records {metadata.sha256}; "
            "refusing to load a tampered or corrupted model"
        )
    return metadata, data
