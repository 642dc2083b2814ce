"""One bundle: a joblib model file, its compiled scorer where the model has a shape that
scorer reproduces, and the metadata that vouches for both."""

import hashlib
import io
import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from sentiment.model.compiled import COMPILED_FILE, CompiledModelError, CompiledScorer
from sentiment.model.drift import ReferenceStats

MODEL_FILE = "model.joblib"
METADATA_FILE = "metadata.json"
FORMAT_VERSION = 1
SHA256 = r"^[0-9a-f]{64}$"
# auto: the compiled scorer where the bundle has one (no unpickling), else scikit-learn.
Engine = Literal["auto", "compiled", "scikit-learn"]


class BundleError(Exception):
    """A bundle cannot be used."""


class BundleNotFoundError(BundleError):
    pass


class BundleIntegrityError(BundleError):
    """The bundle's files do not match what its metadata records."""


class CompiledFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    file: Literal["scorer.json"] = COMPILED_FILE
    sha256: str = Field(pattern=SHA256)


class SampleScore(BaseModel):
    """A review and the P(positive) scikit-learn gave it when the bundle was published."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    text: str
    positive: float = Field(ge=0, le=1)


class BundleMetadata(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    format_version: int = FORMAT_VERSION
    version: str
    created_at: datetime
    git_commit: str
    model_file: Literal["model.joblib"] = MODEL_FILE
    sha256: str = Field(pattern=SHA256)
    # Class index -> label name, e.g. {"0": "negative", "1": "positive"}.
    labels: dict[str, str]
    threshold: float = Field(gt=0, lt=1)
    dataset: dict[str, Any]
    split: dict[str, Any]
    hyperparameters: dict[str, Any]
    metrics: dict[str, Any]
    libraries: dict[str, str]
    compiled: CompiledFile | None = None
    # Whichever engine scores, it must give these back first (sentiment/model/scoring.py).
    samples: list[SampleScore] = Field(default_factory=list)
    # The held-out reviews' vocabulary coverage, scores and lengths: what drift is
    # measured against (sentiment/model/drift.py). Bundles made before it have none.
    reference: ReferenceStats | None = None

    @model_validator(mode="after")
    def _compiled_has_samples(self) -> "BundleMetadata":
        if self.compiled is not None and not self.samples:
            raise ValueError("a compiled scorer comes with the samples it is checked on")
        return self


@dataclass(frozen=True)
class LoadedBundle:
    path: Path
    metadata: BundleMetadata
    # The unpickled scikit-learn model, or the compiled scorer: one of the two.
    model: Any | None
    compiled: CompiledScorer | None = None


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


def read_bundle(bundle_dir: Path, engine: Engine = "auto") -> LoadedBundle:
    """Loads the compiled scorer or the model once every file of the bundle matches its
    sha256 in the metadata. The bytes that were hashed are the bytes that get read, so a
    file cannot be swapped between the check and the load. With a compiled scorer,
    nothing is unpickled."""
    metadata, data = read_verified_bytes(bundle_dir)  # whole or not at all
    if engine != "scikit-learn" and (compiled := read_verified_compiled(bundle_dir, metadata)):
        try:
            return LoadedBundle(bundle_dir, metadata, None, CompiledScorer.from_bytes(compiled))
        except CompiledModelError as error:
            raise BundleIntegrityError(f"{bundle_dir / COMPILED_FILE}: {error}") from None
    if engine == "compiled":
        raise BundleError(
            f"model {metadata.version} has no compiled scorer (its model has a shape "
            "the release tooling does not compile); serve it with scorer auto or scikit-learn"
        )
    try:
        import joblib  # only for bundles served by scikit-learn
    except ImportError:
        raise BundleError(
            f"model {metadata.version} needs scikit-learn and joblib, which are not installed "
            "here, and has no compiled scorer"
        ) from None
    try:
        model = joblib.load(io.BytesIO(data))
    except Exception as error:  # unpickling can fail in many ways; all mean "unusable"
        model_path = bundle_dir / metadata.model_file
        raise BundleIntegrityError(f"{model_path} cannot be loaded: {error}") from None
    return LoadedBundle(bundle_dir, metadata, model)


def read_verified_bytes(bundle_dir: Path) -> tuple[BundleMetadata, bytes]:
    """The metadata and the model file's bytes, once they match its recorded sha256."""
    metadata = read_metadata(bundle_dir)
    return metadata, _verified_bytes(bundle_dir / metadata.model_file, metadata.sha256)


def read_verified_compiled(bundle_dir: Path, metadata: BundleMetadata) -> bytes | None:
    """The compiled scorer's bytes, once they match their recorded sha256; None without."""
    if metadata.compiled is None:
        return None
    return _verified_bytes(bundle_dir / metadata.compiled.file, metadata.compiled.sha256)


def _verified_bytes(path: Path, recorded: str) -> bytes:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise BundleNotFoundError(f"{path} does not exist") from None
    actual = sha256_hex(data)
    if actual != recorded:
        raise BundleIntegrityError(
            f"{path} has sha256 {actual} but its metadata records {recorded}; "
            "refusing to load a tampered or corrupted model"
        )
    return data
