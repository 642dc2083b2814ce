"""config/loadtest.yaml: the load-test profiles, validated."""

from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from sentiment_release.support.config import load_yaml_settings

LOADTEST_FILE = "loadtest.yaml"
PROFILE_NAME = r"^[a-z][a-z0-9-]{0,30}$"


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Stage(Section):
    seconds: int = Field(ge=1, le=24 * 3600)
    users: int = Field(ge=0, le=10_000)
    spawn_rate: float = Field(gt=0, le=10_000)


class Profile(Section):
    description: str = Field(min_length=1)
    stages: list[Stage] = Field(min_length=1)
    user_class: str | None = Field(default=None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    max_failure_ratio: float | None = Field(default=None, ge=0, le=1)
    max_p95_ms: float | None = Field(default=None, gt=0)
    max_p99_ms: float | None = Field(default=None, gt=0)

    @property
    def seconds(self) -> int:
        return sum(stage.seconds for stage in self.stages)

    def breaches(self, figures: dict[str, float]) -> list[str]:
        """One message per threshold the run's aggregated figures break."""
        found = []
        if figures["requests"] == 0:
            return ["the load test made no request"]
        if self.max_failure_ratio is not None and figures["failure_ratio"] > self.max_failure_ratio:
            found.append(f"failure ratio {figures['failure_ratio']:.4f} is above "
                         f"max_failure_ratio {self.max_failure_ratio:g}")  # fmt: skip
        for name, limit in (("p95", self.max_p95_ms), ("p99", self.max_p99_ms)):
            if limit is not None and figures[f"{name}_ms"] > limit:
                found.append(f"{name} {figures[f'{name}_ms']:.0f} ms is above "
                             f"max_{name}_ms {limit:g}")  # fmt: skip
        return found


class LoadTestConfig(Section):
    locustfile: str = Field(min_length=1)
    # The LoadTestShape that runs a profile's stages, passed to locust beside the locustfile.
    shapes: str = Field(min_length=1)
    user_class: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    profiles: dict[Annotated[str, Field(pattern=PROFILE_NAME)], Profile] = Field(min_length=1)


def load_loadtest_config(config_dir: Path) -> LoadTestConfig:
    return load_yaml_settings(LoadTestConfig, config_dir / LOADTEST_FILE)
