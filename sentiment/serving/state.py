"""What the app holds for its lifetime: settings, the loaded model (or why it is not), metrics."""

import logging
from dataclasses import dataclass
from importlib import metadata

from flask import Flask, current_app

from sentiment.model import (
    BundleError,
    BundleIntegrityError,
    BundleNotFoundError,
    ModelFolder,
    Scorer,
)
from sentiment.serving.answers import json_body
from sentiment.serving.errors import NotReady
from sentiment.serving.metrics import Metrics
from sentiment.serving.monitoring import MonitoringCollector
from sentiment.serving.openapi import build_spec
from sentiment.serving.recorder import Recorder
from sentiment.serving.settings import Settings
from sentiment.serving.soft_launch import SoftLaunch

EXTENSION = "sentiment"
logger = logging.getLogger(__name__)


@dataclass
class ServiceState:
    settings: Settings
    scorer: Scorer | None
    # Why it cannot serve (no model, no API keys), in words for clients: no paths or
    # internals (those are logged).
    not_ready_reason: str | None
    metrics: Metrics
    package_version: str
    recorder: Recorder
    soft_launch: SoftLaunch
    # The OpenAPI document, as served.
    openapi: bytes

    def ready_scorer(self) -> Scorer:
        if self.scorer is None:
            raise NotReady(
                f"model is not loaded: {self.not_ready_reason} (the service log says more)",
                "model_not_ready",
            )
        if self.not_ready_reason is not None:
            raise NotReady(f"{self.not_ready_reason} (the service log says more)", "not_ready")
        return self.scorer


def public_reason(error: Exception) -> str:
    if isinstance(error, BundleNotFoundError):
        return "no model bundle is available"
    if isinstance(error, BundleIntegrityError):
        return "the model bundle failed verification"
    return "the model bundle cannot be used"


def load_scorer(settings: Settings) -> tuple[Scorer | None, str | None]:
    """Loads and verifies the configured bundle once; a bad bundle leaves the app not ready.
    The scorer, or why not (for clients; the log has the details)."""
    registry = ModelFolder(settings.model.bundles_dir)
    try:
        bundle = registry.load(settings.model.version, settings.model.scorer)
        scorer = Scorer(bundle)
    except (BundleError, ValueError, KeyError) as error:
        logger.error("model not loaded; the service stays not ready: %s", error)
        return None, public_reason(error)
    logger.info(
        "model loaded",
        extra={
            "model_version": scorer.version,
            "model_sha256": scorer.metadata.sha256,
            "scorer": scorer.engine,
        },
    )
    return scorer, None


def load_challenger(settings: Settings) -> Scorer | None:
    """The challenger the image carries, where config soft-launches one. One that cannot be
    used is logged and left out (sentiment_challenger_loaded 0): the champion serves."""
    if settings.model.challenger.mode == "off":
        return None
    registry = ModelFolder(settings.model.bundles_dir)
    version = registry.challenger_version()
    if version is None:
        logger.warning("model.challenger.mode is %s, but no challenger is in %s",
                       settings.model.challenger.mode, registry.root)  # fmt: skip
        return None
    try:
        challenger = Scorer(registry.load(version, settings.model.scorer))
    except (BundleError, ValueError, KeyError) as error:
        logger.error("challenger %s not loaded; the champion serves alone: %s", version, error)
        return None
    logger.info("challenger loaded", extra={"model_version": version,
                                            "mode": settings.model.challenger.mode})  # fmt: skip
    return challenger


def package_version() -> str:
    try:
        return metadata.version("sentiment-service")
    except metadata.PackageNotFoundError:
        return "0+unknown"


def init_state(app: Flask, settings: Settings, scorer: Scorer | None, not_ready_reason: str | None):
    def current_scorer() -> Scorer | None:
        return state.scorer

    soft_launch = SoftLaunch(settings.model.challenger, load_challenger(settings))
    metrics = Metrics(current_scorer, [MonitoringCollector(settings.monitoring, current_scorer)],
                      soft_launch)  # fmt: skip
    state = ServiceState(
        settings=settings,
        scorer=scorer,
        not_ready_reason=not_ready_reason,
        metrics=metrics,
        package_version=package_version(),
        recorder=Recorder(settings, metrics.count_dropped, metrics.count_recorded,
                          metrics.count_shadow),
        soft_launch=soft_launch,
        openapi=json_body(build_spec(settings.service, package_version(), settings.auth,
                                     settings.rate_limit)),
    )  # fmt: skip
    app.extensions[EXTENSION] = state
    return state


def get_state() -> ServiceState:
    return current_app.extensions[EXTENSION]
