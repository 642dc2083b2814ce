"""The delivery configuration: config/delivery.yaml, then DELIVERY_* variables."""

from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationError, model_validator
from pydantic_settings import SettingsConfigDict

from delivery.errors import DeliveryError
from settings.loader import DEFAULT_CONFIG_DIR, ConfigError, describe_errors, read_yaml
from settings.schema import Section, YamlSettings

DELIVERY_FILE = "delivery.yaml"


class BuildSettings(Section):
    base_image: str = Field(min_length=1)
    python_version: str = Field(pattern=r"^3\.\d+$")
    platforms: list[str] = Field(min_length=1)
    size_budget_mb: int = Field(ge=1)


class RegistrySettings(Section):
    address: str = Field(pattern=r"^[A-Za-z0-9.-]+(:[0-9]+)?(/[a-z0-9._/-]+)?$")
    repository: str = Field(pattern=r"^[a-z0-9]+([._/-][a-z0-9]+)*$")
    tls_verify: bool
    local_server: bool

    @property
    def host(self) -> str:
        """HOST[:PORT], without the namespace part."""
        return self.address.split("/", 1)[0]

    @property
    def image_name(self) -> str:
        return f"{self.address}/{self.repository}"


class KubernetesSettings(Section):
    kubectl: str = Field(min_length=1)
    rollout_timeout_seconds: float = Field(gt=0, le=3600)


class DeploySettings(Section):
    target: Literal["local", "kubernetes"]
    kubernetes: KubernetesSettings
    container_prefix: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]*$")
    ports: dict[Literal["dev", "test", "stage", "prod"], int]
    ready_timeout_seconds: float = Field(gt=0, le=3600)
    log_tail_lines: int = Field(ge=1, le=10_000)

    @model_validator(mode="after")
    def _one_port_each(self) -> "DeploySettings":
        missing = {"dev", "test", "stage", "prod"} - set(self.ports)
        if missing:
            raise ValueError(f"deploy.ports: no port for {', '.join(sorted(missing))}")
        if len(set(self.ports.values())) != len(self.ports):
            raise ValueError("deploy.ports: two environments share a port")
        if not all(1024 <= port <= 65535 for port in self.ports.values()):
            raise ValueError("deploy.ports: ports must be between 1024 and 65535")
        return self


class PromotionSettings(Section):
    release_tag_pattern: str = Field(min_length=1)
    lock_timeout_seconds: float = Field(ge=0, le=24 * 3600)
    state_branch: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._/-]*$")
    state_remote: str = Field(min_length=1)


class DeliverySettings(YamlSettings):
    model_config = SettingsConfigDict(
        env_prefix="DELIVERY_", env_nested_delimiter="__", extra="forbid", frozen=True
    )

    engine: Literal["auto", "podman", "docker"]
    state_dir: Path
    build: BuildSettings
    registry: RegistrySettings
    deploy: DeploySettings
    promotion: PromotionSettings


def load_delivery_settings(config_dir: Path = DEFAULT_CONFIG_DIR) -> DeliverySettings:
    path = config_dir / DELIVERY_FILE
    try:
        return DeliverySettings(**read_yaml(path))
    except ConfigError as error:
        raise DeliveryError(str(error)) from None
    except ValidationError as error:
        raise DeliveryError(
            f"invalid delivery configuration ({path} + DELIVERY_* variables):\n"
            f"{describe_errors(error)}"
        ) from None
