"""`latency`: single-review /predict/ calls, one after another, each timed: a budget per
request, not a throughput. The texts are the model's held-out reviews (real lengths)."""

import statistics
import time
from typing import Any

import requests
from pydantic import Field

from sentiment_release.gates.checks.base import (
    Check,
    CheckOptions,
    CheckResult,
    GateContext,
    register,
)
from sentiment_release.gates.checks.skew import REQUEST_TIMEOUT_SECONDS, held_out


class LatencyOptions(CheckOptions):
    requests: int = Field(ge=1, le=100_000)
    max_p95_ms: float = Field(gt=0)
    max_ms: float = Field(gt=0)


@register
class Latency(Check):
    kind = "latency"
    Options = LatencyOptions
    needs_service = True

    def check(self, context: GateContext, result: CheckResult) -> None:
        budget: LatencyOptions = self.options
        texts = held_out(context).test_texts
        check_latency(context.service_url, texts, budget, result, context.api_headers)

    @classmethod
    def summary(cls, name: str, figures: dict[str, Any]) -> str:
        return f"{name} p95 {figures['p95_ms']:.0f} ms" if "p95_ms" in figures else name


def check_latency(
    base_url: str,
    texts: list[str],
    budget: LatencyOptions,
    result: CheckResult,
    headers: dict[str, str],
) -> None:
    chosen = [texts[i % len(texts)] for i in range(budget.requests)]
    timings_ms: list[float] = []
    with requests.Session() as session:
        session.headers.update(headers)
        for text in chosen:
            started = time.perf_counter()
            try:
                response = session.post(
                    f"{base_url}/predict/", json={"review": text}, timeout=REQUEST_TIMEOUT_SECONDS
                )
            except requests.RequestException as error:
                result.fail(f"a /predict/ call failed: {error}")
                return
            timings_ms.append((time.perf_counter() - started) * 1000)
            if response.status_code != 200:
                result.fail(f"/predict/ answered {response.status_code}: {response.text[:200]}")
                return
    p95 = statistics.quantiles(timings_ms, n=100)[94] if len(timings_ms) > 1 else timings_ms[0]
    result.figures = {
        "requests": len(timings_ms),
        "median_ms": round(statistics.median(timings_ms), 2),
        "p95_ms": round(p95, 2),
        "max_ms": round(max(timings_ms), 2),
    }
    if p95 > budget.max_p95_ms:
        result.fail(
            f"p95 {p95:.1f} ms is above the latency budget max_p95_ms {budget.max_p95_ms:.12g}"
        )
    if max(timings_ms) > budget.max_ms:
        result.fail(
            f"the slowest request took {max(timings_ms):.1f} ms, above max_ms {budget.max_ms:.12g}"
        )
