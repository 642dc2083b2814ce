"""The validated shape of the service's configuration: types, ranges and allowed values."""

import re
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

# An environment's name becomes a file name, a container name, part of a namespace.
ENVIRONMENT_NAME = re.compile(r"[a-z][a-z0-9-]{0,30}")
EnvironmentName = Annotated[str, Field(pattern=rf"^{ENVIRONMENT_NAME.pattern}$")]


class Section(BaseModel):
    """A config section: unknown keys are errors, so a typo never passes silently."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class SoftLaunchSettings(Section):
    # What the challenger an image carries (config/champion.yaml `challenger`) does here:
    # off; shadow: scored beside the champion (off the request's path), the champion
    # answers; canary: it answers `canary_share` of the clients (by key id, else request).
    mode: Literal["off", "shadow", "canary"]
    shadow_share: float = Field(ge=0, le=1)
    canary_share: float = Field(ge=0, le=1)


class ModelSettings(Section):
    bundles_dir: Path
    version: str = Field(min_length=1, pattern=r"^[A-Za-z0-9._-]+$")
    scorer: Literal["auto", "compiled", "scikit-learn"]
    challenger: SoftLaunchSettings


class ServiceSettings(Section):
    host: str = Field(min_length=1)
    port: int = Field(ge=1, le=65535)
    debug: bool
    max_body_bytes: int = Field(ge=1024, le=16 * 1024 * 1024)
    max_batch_size: int = Field(ge=1, le=10_000)
    max_review_chars: int = Field(ge=1, le=1_000_000)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"]
    # The try-it page at / (sentiment/serving/page.py).
    try_it_page: bool
    # Swagger UI over /openapi.json at /docs (sentiment/serving/docs.py).
    api_docs: bool
    log_review_text: bool
    # Customers' traffic reaches it: debug mode and review-text logging are refused.
    customer_facing: bool


class KeyLimit(Section):
    per_second: float = Field(gt=0, le=1_000_000)
    burst: int = Field(ge=1, le=1_000_000)


KeyId = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]{0,31}$")]


class AuthSettings(Section):
    # True: every endpoint but /healthz, /readyz, /openapi.json and the try-it page
    # needs an API key (sentiment/serving/auth.py); without a usable key-hash file, not ready.
    required: bool
    # One salted hash per key (sentiment/serving/api_keys.py), from a Secret; never the keys.
    key_hashes_file: Path
    # Requests with no valid key allowed per client address, beyond which 429.
    refusals: KeyLimit
    # Key ids that see every key's traffic in /metrics (the scraper's); others see totals.
    operator_keys: list[KeyId]


class MonitoringSettings(Section):
    # What happens to each prediction after it is answered (sentiment/serving/recorder.py): an
    # audit event in rotating JSON lines, and a row in the outcome store that feedback,
    # live accuracy and drift read. Both live in `dir`, a volume of its own.
    enabled: bool
    dir: Path
    # No audit file grows past this: a batch that does not fit is split between lines,
    # after the live file is rotated. Only a single longer line goes over, alone in a file.
    audit_max_bytes: int = Field(ge=4096, le=10 * 1024**3)
    # Rotated files kept beside the live one: at most (1 + this) * audit_max_bytes.
    audit_backups: int = Field(ge=0, le=100)
    # Review texts in the audit events and the outcome store (refused where customers are,
    # unless `allow_review_text_where_customers_are` says the customers agreed).
    record_review_text: bool
    # Requests waiting for the writer, and their review characters; beyond either, they
    # are dropped and counted.
    queue_size: int = Field(ge=1, le=1_000_000)
    queue_max_chars: int = Field(ge=1000, le=1_000_000_000)
    # Reviews kept for feedback and drift (a batch's count each) per API key id, each
    # key's oldest deleted first: one key's traffic never pushes out another's. The key
    # ids are those of the key-hash file (one, "", without keys), so the store holds at
    # most this times their number. And feedbacks kept (each may hold a review up to
    # max_feedback_bytes), in all.
    recent_predictions: int = Field(ge=100, le=10_000_000)
    feedback_kept: int = Field(ge=1, le=10_000_000)
    # Reviews the drift gauges are computed over (the latest, whichever key); feedbacks
    # the live accuracy is computed over per key id (each key's latest), the gauge being
    # the mean of the keys' accuracies: one key moves it by at most 1/(keys with feedback).
    drift_window: int = Field(ge=10, le=1_000_000)
    accuracy_window: int = Field(ge=1, le=1_000_000)
    # Largest feedback body (one id, one label, an optional review).
    max_feedback_bytes: int = Field(ge=256, le=1024 * 1024)


class RateLimitSettings(Section):
    # Requests per API key id (sentiment/serving/rate_limit.py), beyond which 429 with Retry-After.
    enabled: bool
    per_second: float = Field(gt=0, le=1_000_000)
    # Requests a key may send at once after a quiet spell.
    burst: int = Field(ge=1, le=1_000_000)
    # Key ids with a limit of their own; null: not limited (the gates' key, say).
    per_key: dict[KeyId, KeyLimit | None]


class GunicornSettings(Section):
    # The worker classes the runtime lock can run (gevent is not in it).
    worker_class: Literal["sync", "gthread"]
    workers: int = Field(ge=1, le=64)
    threads: int = Field(ge=1, le=64)
    timeout_seconds: int = Field(ge=1, le=3600)
    graceful_timeout_seconds: int = Field(ge=1, le=3600)
    keepalive_seconds: int = Field(ge=0, le=300)
    preload: bool
    max_requests: int = Field(ge=0)
    max_requests_jitter: int = Field(ge=0)
    # None: a private directory per start (sentiment/serving/runtime_dir.py).
    runtime_dir: Path | None
    # On SIGTERM: /readyz answers 503 at once, requests are served this long, then the
    # graceful stop (graceful_timeout_seconds) begins. A second SIGTERM stops at once.
    drain_seconds: float = Field(ge=0, le=300)

    @model_validator(mode="after")
    def _threads_need_gthread(self) -> "GunicornSettings":
        # gunicorn would quietly run gthread instead: say so rather than surprise.
        if self.worker_class == "sync" and self.threads != 1:
            raise ValueError("worker_class sync runs one thread: set threads 1, or gthread")
        return self


class BuildInfo(Section):
    git_commit: str = Field(min_length=1)
    build_id: str = Field(min_length=1)
    # The image this runs as, REGISTRY/NAME@sha256:... (set by the deploy), for the audit.
    image: str = Field(min_length=1, max_length=512)


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
    """Every setting the service reads. Built only by service.settings.load_settings()."""

    model_config = SettingsConfigDict(
        env_prefix="SENTIMENT_",
        env_nested_delimiter="__",
        extra="forbid",
        frozen=True,
    )

    environment: EnvironmentName
    model: ModelSettings
    service: ServiceSettings
    auth: AuthSettings
    monitoring: MonitoringSettings
    rate_limit: RateLimitSettings
    gunicorn: GunicornSettings
    build: BuildInfo

    @model_validator(mode="after")
    def _customer_data_is_protected(self) -> "Settings":
        if self.service.customer_facing:
            where = f"{self.environment} is customer-facing"
            if self.service.debug:
                raise ValueError(f"service.debug: debug mode is refused ({where})")
            if self.service.log_review_text:
                raise ValueError(
                    f"service.log_review_text: review texts are never logged ({where})"
                )
            if not self.auth.required:
                raise ValueError(f"auth.required: API keys are required ({where})")
            if self.monitoring.record_review_text:
                raise ValueError(
                    f"monitoring.record_review_text: review texts are never recorded ({where})"
                )
        return self
