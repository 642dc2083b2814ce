"""The validated shape of the configuration: types, ranges and allowed values."""

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, HttpUrl, field_validator, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

Environment = Literal["dev", "test", "stage", "prod"]
Source = Literal["yelp", "amazon", "imdb"]


class Section(BaseModel):
    """A config section: unknown keys are errors, so a typo never passes silently."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class DatasetSettings(Section):
    sources: list[Source] = Field(min_length=1)
    url: HttpUrl
    cache_dir: Path
    download_timeout_seconds: float = Field(gt=0, le=600)
    skip_bad_lines: bool

    @field_validator("sources")
    @classmethod
    def _unique(cls, sources: list[str]) -> list[str]:
        if len(set(sources)) != len(sources):
            raise ValueError("each source may be listed once")
        return sources


class VectorizerSettings(Section):
    kind: Literal["tfidf", "count"]
    ngram_max: int = Field(ge=1, le=3)
    min_df: int = Field(ge=1)
    sublinear_tf: bool


class ClassifierSettings(Section):
    C: float = Field(gt=0)
    max_iter: int = Field(ge=10)


class QualityGateSettings(Section):
    min_accuracy: float = Field(ge=0, le=1)
    min_f1: float = Field(ge=0, le=1)
    min_roc_auc: float = Field(ge=0, le=1)


class TrainingSettings(Section):
    test_size: float = Field(gt=0, lt=1)
    seed: int = Field(ge=0)
    threshold: float = Field(gt=0, lt=1)
    vectorizer: VectorizerSettings
    classifier: ClassifierSettings
    quality_gate: QualityGateSettings


class ModelSettings(Section):
    registry_dir: Path
    version: str = Field(min_length=1, pattern=r"^[A-Za-z0-9._-]+$")


class ServiceSettings(Section):
    host: str = Field(min_length=1)
    port: int = Field(ge=1, le=65535)
    debug: bool
    max_body_bytes: int = Field(ge=1024, le=16 * 1024 * 1024)
    max_batch_size: int = Field(ge=1, le=10_000)
    max_review_chars: int = Field(ge=1, le=1_000_000)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"]
    log_review_text: bool


class GunicornSettings(Section):
    workers: int = Field(ge=1, le=64)
    threads: int = Field(ge=1, le=64)
    timeout_seconds: int = Field(ge=1, le=3600)
    graceful_timeout_seconds: int = Field(ge=1, le=3600)
    keepalive_seconds: int = Field(ge=0, le=300)
    preload: bool
    max_requests: int = Field(ge=0)
    max_requests_jitter: int = Field(ge=0)
    metrics_dir: Path


class BuildSettings(Section):
    git_commit: str = Field(min_length=1)
    build_id: str = Field(min_length=1)


class LoadTestSettings(Section):
    """The test gate's locust run and the figures it must reach."""

    users: int = Field(ge=1, le=10_000)
    spawn_rate: float = Field(gt=0, le=10_000)
    run_time_seconds: int = Field(ge=1, le=3600)
    max_failure_ratio: float = Field(ge=0, le=1)
    max_p95_ms: float = Field(gt=0)
    max_p99_ms: float = Field(gt=0)
    min_rps: float = Field(ge=0)


class SkewSettings(Section):
    """Served scores on the held-out split against the bundle's own, review by review."""

    max_score_difference: float = Field(ge=0, le=1)


class LatencyBudgetSettings(Section):
    """Single-review requests, one at a time: a budget per request, not a throughput."""

    requests: int = Field(ge=1, le=100_000)
    max_p95_ms: float = Field(gt=0)
    max_ms: float = Field(gt=0)


class GateSettings(Section):
    """What the environment's gate runs. An environment sets only the checks its gate has."""

    # dev: commands that must exit 0 (argv lists, run from the repository root).
    lint: list[list[str]] = Field(default_factory=list)
    # dev: pytest arguments of the unit tests.
    unit_tests: list[str] = Field(default_factory=list)
    # test: pytest arguments of the integration tests, run against the deployed URL.
    integration_tests: list[str] = Field(default_factory=list)
    load_test: LoadTestSettings | None = None
    # stage: pytest arguments of the user-acceptance checks (smoke checks are fixed).
    uat_tests: list[str] = Field(default_factory=list)
    skew: SkewSettings | None = None
    latency: LatencyBudgetSettings | None = None


class YamlSettings(BaseSettings):
    """Settings read from YAML (passed as init values) that environment variables override."""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (env_settings, init_settings)


class Settings(YamlSettings):
    """Every setting the project reads. Built only by settings.load_settings()."""

    model_config = SettingsConfigDict(
        env_prefix="SENTIMENT_",
        env_nested_delimiter="__",
        extra="forbid",
        frozen=True,
    )

    environment: Environment
    # A local copy of the UCI files; when unset the training downloads them.
    data_dir: Path | None = None
    dataset: DatasetSettings
    training: TrainingSettings
    model: ModelSettings
    service: ServiceSettings
    gunicorn: GunicornSettings
    build: BuildSettings
    gate: GateSettings = Field(default_factory=GateSettings)

    @model_validator(mode="after")
    def _prod_is_locked_down(self) -> "Settings":
        if self.environment == "prod":
            if self.service.debug:
                raise ValueError("service.debug: debug mode is refused in prod")
            if self.service.log_review_text:
                raise ValueError("service.log_review_text: review texts are never logged in prod")
        return self
