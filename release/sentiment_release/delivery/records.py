"""Records of builds and deployments under the state directory, typed and written atomically.

Layout:
    <state>/builds/<digest hex>.json    one per pushed image
    <state>/builds/LATEST               digest of the newest build
    <state>/deployments/<env>.json      what was last deployed to each environment
"""

import time
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict

from sentiment.files import atomic_write
from sentiment.serving.settings.schema import EnvironmentName
from sentiment_release.delivery.errors import DeliveryError
from sentiment_release.delivery.references import DIGEST, Digest, PinnedImage, digest_of
from sentiment_release.support.clock import Timestamp, utc_now
from sentiment_release.support.records import Record, read_record


class ModelRef(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    version: str
    sha256: str
    # The bundle's digest in the model repository, when the build took the pinned champion.
    digest: str | None = None


class BuildSeconds(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    image_build: float
    push: float
    total: float


class BuildRecord(Record):
    digest: Digest
    image: PinnedImage
    tag: str
    size_bytes: int
    size_mb: float
    size_budget_mb: int
    labels: dict[str, str]
    model: ModelRef
    # A model carried beside the champion for a soft launch (config/champion.yaml).
    challenger: ModelRef | None = None
    git_commit: str
    git_dirty: bool
    source_tree: str
    version: str
    base_image: str
    engine: str
    built_at: Timestamp
    seconds: BuildSeconds

    @property
    def over_budget(self) -> bool:
        return self.size_mb > self.size_budget_mb


class DeploymentRecord(Record):
    environment: EnvironmentName
    image: PinnedImage
    digest: Digest
    target: Literal["local", "kubernetes"]
    # Where this machine reaches it (a local port, or a port-forward for Kubernetes).
    url: str
    config_sha256: str
    model_version: str | None
    deployed_at: Timestamp
    seconds_to_ready: float
    replaced_previous: bool

    @classmethod
    def ready_now(
        cls, environment: str, reference: str, target: Literal["local", "kubernetes"], url: str,
        config_sha256: str, model_version: str | None, started: float, replaced: bool,
    ) -> "DeploymentRecord":  # fmt: skip
        """The record of a deployment that has just become ready (`started`: monotonic)."""
        return cls(
            environment=environment,
            image=reference,
            digest=digest_of(reference),
            target=target,
            url=url,
            config_sha256=config_sha256,
            model_version=model_version,
            deployed_at=utc_now(),
            seconds_to_ready=round(time.monotonic() - started, 2),
            replaced_previous=replaced,
        )


class Records:
    def __init__(self, state_dir: Path):
        self.builds = state_dir / "builds"
        self.deployments = state_dir / "deployments"

    def save_build(self, record: BuildRecord) -> Path:
        path = self.builds / f"{record.digest.removeprefix('sha256:')}.json"
        atomic_write(path, (record.to_json() + "\n").encode())
        atomic_write(self.builds / "LATEST", f"{record.digest}\n".encode())
        return path

    def latest_build(self) -> BuildRecord | None:
        try:
            digest = (self.builds / "LATEST").read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            return None
        return self.build(digest)

    def build(self, digest: str) -> BuildRecord | None:
        if not DIGEST.fullmatch(digest):
            raise DeliveryError(f"{digest!r} is not a digest (in {self.builds})")
        return read_record(BuildRecord, self.builds / f"{digest.removeprefix('sha256:')}.json")

    def save_deployment(self, record: DeploymentRecord) -> Path:
        path = self.deployments / f"{record.environment}.json"
        atomic_write(path, (record.to_json() + "\n").encode())
        return path

    def deployment(self, environment: str) -> DeploymentRecord | None:
        return read_record(DeploymentRecord, self.deployments / f"{environment}.json")

    def forget_deployment(self, environment: str) -> None:
        (self.deployments / f"{environment}.json").unlink(missing_ok=True)
