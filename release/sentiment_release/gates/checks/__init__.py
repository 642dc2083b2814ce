"""The checks gates are made of, by kind. config/promotion.yaml names them per environment
with their options; a new kind is one class here, registered with @register."""

from sentiment_release.gates.checks import (  # noqa: F401  (importing a kind registers it)
    capacity,
    commands,
    latency,
    load,
    pytest_suite,
    quality,
    shadow,
    skew,
)
from sentiment_release.gates.checks.base import (
    CHECKS,
    Baseline,
    Check,
    CheckResult,
    GateContext,
    configure,
)

__all__ = ["CHECKS", "Baseline", "Check", "CheckResult", "GateContext", "configure"]
