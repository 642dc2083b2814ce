"""The delivery configuration: config/delivery.yaml, then DELIVERY_* variables."""

from pathlib import Path
from typing import Annotated, Literal

from pydantic import AfterValidator, Field
from pydantic_settings import SettingsConfigDict

from sentiment.serving.settings.schema import Section, YamlSettings
from sentiment_release.delivery.base_image import check_pinned
from sentiment_release.support.config import load_yaml_settings

DELIVERY_FILE = "delivery.yaml"


class ImageBuildSettings(Section):
    # NAME:TAG@sha256:... (`make pin-base-image`), or a localhost/ image made on this host.
    base_image: Annotated[str, AfterValidator(check_pinned)]
    python_version: str = Field(pattern=r"^3\.\d+$")
    platforms: list[str] = Field(min_length=1)
    size_budget_mb: int = Field(ge=1)


class RegistrySettings(Section):
    address: str = Field(pattern=r"^[A-Za-z0-9.-]+(:[0-9]+)?(/[a-z0-9._/-]+)?$")
    repository: str = Field(pattern=r"^[a-z0-9]+([._/-][a-z0-9]+)*$")
    model_repository: str = Field(pattern=r"^[a-z0-9]+([._/-][a-z0-9]+)*$")
    tls_verify: bool
    local_server: bool
    tag_releases: bool

    @property
    def host(self) -> str:
        """HOST[:PORT], without the namespace part."""
        return self.address.split("/", 1)[0]

    @property
    def image_name(self) -> str:
        return f"{self.address}/{self.repository}"

    @property
    def model_name(self) -> str:
        return f"{self.address}/{self.model_repository}"


class KubernetesSettings(Section):
    kubectl: str = Field(min_length=1)
    rollout_timeout_seconds: float = Field(gt=0, le=3600)


class LocalSettings(Section):
    # One container per environment, named <container_prefix><env>, on the port the
    # promotion policy gives the environment.
    container_prefix: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]*$")
    ready_timeout_seconds: float = Field(gt=0, le=3600)
    log_tail_lines: int = Field(ge=1, le=10_000)


class DeploySettings(Section):
    target: Literal["local", "kubernetes"]
    kubernetes: KubernetesSettings
    local: LocalSettings


class DeliverySettings(YamlSettings):
    model_config = SettingsConfigDict(
        env_prefix="DELIVERY_", env_nested_delimiter="__", extra="forbid", frozen=True
    )

    engine: Literal["auto", "podman", "docker"]
    state_dir: Path
    build: ImageBuildSettings
    registry: RegistrySettings
    deploy: DeploySettings


def load_delivery_settings(config_dir: Path) -> DeliverySettings:
    return load_yaml_settings(DeliverySettings, config_dir / DELIVERY_FILE, "DELIVERY_* variables")
