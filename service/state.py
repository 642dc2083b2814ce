"""What the app holds for its lifetime: settings, the loaded model (or why it is not), metrics."""

import logging
from dataclasses import dataclass
from importlib import metadata

from flask import Flask, current_app

from model import BundleError, BundleIntegrityError, BundleNotFoundError, ModelRegistry, Scorer
from service.errors import NotReady
from service.metrics import Metrics
from service.monitoring import MonitoringCollector
from service.recorder import Recorder
from service.settings import Settings

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
    registry = ModelRegistry(settings.model.registry_dir)
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


def package_version() -> str:
    try:
        return metadata.version("sentiment-service")
    except metadata.PackageNotFoundError:
        return "0+unknown"


def init_state(app: Flask, settings: Settings, scorer: Scorer | None, not_ready_reason: str | None):
    def current_scorer() -> Scorer | None:
        return state.scorer

    metrics = Metrics(current_scorer, [MonitoringCollector(settings.monitoring, current_scorer)])
    state = ServiceState(
        settings=settings,
        scorer=scorer,
        not_ready_reason=not_ready_reason,
        metrics=metrics,
        package_version=package_version(),
        recorder=Recorder(settings, metrics.count_dropped, metrics.count_recorded),
    )
    app.extensions[EXTENSION] = state
    return state


def get_state() -> ServiceState:
    return current_app.extensions[EXTENSION]
