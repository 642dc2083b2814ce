"""`shadow`: how often the challenger the image carries agrees with the champion, measured
on the deployed service in shadow mode (sentiment/serving/soft_launch.py).

The model's held-out reviews are sent through the service; the challenger scores each
shadowed one after the answer, and the service counts the agreements
(sentiment_shadow_reviews_total, sentiment_shadow_agreements_total). The check reads both
counters before and after, waits for the writer to catch up, and fails when the share of
agreements is below `min_agreement`. An image without a challenger passes (there is
nothing to launch), unless `require_challenger` says one must be there.
"""

import time
from typing import Any

import requests
from prometheus_client.parser import text_string_to_metric_families
from pydantic import Field

from sentiment_release.gates.checks.base import (
    Check,
    CheckOptions,
    CheckResult,
    GateContext,
    register,
)
from sentiment_release.gates.checks.skew import REQUEST_TIMEOUT_SECONDS, held_out, served_scores

COUNTERS = ("sentiment_shadow_reviews_total", "sentiment_shadow_agreements_total")
SETTLE_SECONDS = 15.0


class ShadowOptions(CheckOptions):
    min_agreement: float = Field(ge=0, le=1)
    reviews: int = Field(ge=1, le=100_000)
    require_challenger: bool = False


def shadow_counters(session: requests.Session, base_url: str) -> tuple[dict[str, float], bool]:
    """The two counters, and whether a challenger is loaded, from /metrics."""
    response = session.get(f"{base_url}/metrics", timeout=REQUEST_TIMEOUT_SECONDS)
    response.raise_for_status()
    values, loaded = dict.fromkeys(COUNTERS, 0.0), False
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            if sample.name in values:
                values[sample.name] += sample.value
            elif sample.name == "sentiment_challenger_loaded":
                loaded = sample.value == 1
    return values, loaded


@register
class Shadow(Check):
    kind = "shadow"
    Options = ShadowOptions
    needs_service = True

    def check(self, context: GateContext, result: CheckResult) -> None:
        options: ShadowOptions = self.options
        texts = held_out(context).test_texts
        chosen = [texts[i % len(texts)] for i in range(options.reviews)]
        url = context.service_url
        batch_size = context.service_settings.service.max_batch_size
        with requests.Session() as session:
            session.headers.update(context.api_headers)
            try:
                before, loaded = shadow_counters(session, url)
                if not loaded:
                    result.figures = {"challenger": False}
                    if options.require_challenger:
                        result.fail("no challenger runs beside the champion here, and this "
                                    "gate requires one")  # fmt: skip
                    return
                served_scores(session, url, chosen, batch_size)
                after = self._settled(session, url, before)
            except (requests.RequestException, ValueError, KeyError, TypeError) as error:
                result.fail(f"the shadow comparison could not be made: {error}")
                return
        reviews = after[COUNTERS[0]] - before[COUNTERS[0]]
        agreements = after[COUNTERS[1]] - before[COUNTERS[1]]
        if reviews <= 0:
            result.fail(
                f"none of the {len(chosen)} reviews sent was shadowed (is "
                "model.challenger.mode shadow here, with a shadow_share above 0?)"
            )
            return
        agreement = agreements / reviews
        result.figures = {
            "challenger": True, "reviews": int(reviews), "agreement": agreement,
            "min_agreement": options.min_agreement,
        }  # fmt: skip
        if agreement < options.min_agreement:
            result.fail(
                f"the challenger agrees with the champion on {agreement:.1%} of {int(reviews)} "
                f"shadowed reviews, below min_agreement {options.min_agreement:.0%}"
            )

    @staticmethod
    def _settled(session, url: str, before: dict[str, float]) -> dict[str, float]:
        """The counters once they stop moving (the writer records after the answers)."""
        deadline = time.monotonic() + SETTLE_SECONDS
        last = None
        while True:
            time.sleep(0.3)
            current, _ = shadow_counters(session, url)
            if current == last or time.monotonic() > deadline:
                return current
            last = current

    @classmethod
    def summary(cls, name: str, figures: dict[str, Any]) -> str:
        if figures.get("challenger") is False:
            return f"{name}: no challenger"
        if "agreement" not in figures:
            return name
        return f"{name} {figures['agreement']:.1%} of {figures['reviews']}"
