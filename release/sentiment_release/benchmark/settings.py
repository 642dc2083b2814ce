"""config/benchmark.yaml: how long each point runs, the targets, the quoted stacks."""

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator

from sentiment_release.benchmark.run import CONCURRENCY
from sentiment_release.support.config import load_yaml_settings

BENCHMARK_FILE = "benchmark.yaml"


class Targets(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    min_share_of_wsgi_floor: float = Field(gt=0, le=1)
    max_p99_vs_wsgi_floor: float = Field(gt=0)
    min_speedup_vs_lecture: float = Field(gt=0)
    min_speedup_vs_quoted: float = Field(gt=0)
    min_batch_reviews_per_core: float = Field(gt=0)
    max_seconds_to_ready: float = Field(gt=0)
    max_pss_mb: float = Field(gt=0)
    max_image_mb: float = Field(gt=0)


class QuotedServer(BaseModel):
    """Another serving stack's figures, measured once by hand, not by this run."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1)
    how: str = Field(min_length=1)
    measured: str = Field(pattern=r"^\d{4}-\d{2}(-\d{2})?$")
    requests_per_second: dict[int, float]
    # At the highest concurrency, as the table's p99 column.
    p99_ms: float = Field(gt=0)

    @field_validator("requests_per_second")
    @classmethod
    def _every_concurrency(cls, rates: dict[int, float]) -> dict[int, float]:
        if sorted(rates) != sorted(CONCURRENCY) or min(rates.values()) <= 0:
            raise ValueError(f"a positive rate at each of {', '.join(map(str, CONCURRENCY))} "
                             "connections, and no others")  # fmt: skip
        return rates


class BenchmarkSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    seconds: float = Field(ge=1, le=600)
    warmup_seconds: float = Field(ge=1, le=600)
    targets: Targets
    quoted: list[QuotedServer] = Field(default_factory=list)


def load_benchmark_settings(config_dir: Path) -> BenchmarkSettings:
    return load_yaml_settings(BenchmarkSettings, config_dir / BENCHMARK_FILE)
