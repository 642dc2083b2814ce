"""Training/serving skew and the per-request latency budget, checked against a deployed URL.

The bundle's metadata records the data it was evaluated on (file hashes), the split
(seed, size) and the metrics. Rebuilding that held-out split, scoring it with the
bundle offline and through the service, and getting the recorded metrics back from
both proves the deployed model is the one that was evaluated, served the same way.
"""

import math
import statistics
import time
from pathlib import Path

import requests

from gates.checks import CheckResult, timed
from model_registry import LoadedBundle
from settings.schema import LatencyBudgetSettings, SkewSettings
from training.dataset import load_dataset
from training.evaluate import metrics_from_scores, positive_scores
from training.pipeline import Split, split_dataset

REQUEST_TIMEOUT_SECONDS = 30
EXACT_METRICS = ("confusion_matrix", "support")
FLOAT_METRICS = ("accuracy", "f1", "roc_auc")


class SkewError(Exception):
    """The check cannot be made (data differs from what the bundle was evaluated on)."""


def held_out_split(bundle: LoadedBundle, data_dir: Path) -> Split:
    """The bundle's held-out split, rebuilt from its recorded data files and split."""
    recorded = bundle.metadata.dataset
    sources = [item["source"] for item in recorded["files"]]
    dataset = load_dataset(data_dir, sources, skip_bad_lines=recorded["skipped_lines"] > 0)
    if dataset.fingerprint()["sha256"] != recorded["sha256"]:
        raise SkewError(
            f"the data in {data_dir} is not the data model {bundle.metadata.version} was "
            f"evaluated on (dataset sha256 {recorded['sha256'][:12]}...)"
        )
    split = bundle.metadata.split
    return split_dataset(dataset, split["test_size"], split["seed"])


def served_scores(
    session: requests.Session, base_url: str, texts: list[str], batch_size: int
) -> list[float]:
    scores: list[float] = []
    for start in range(0, len(texts), batch_size):
        response = session.post(
            f"{base_url}/v1/predict",
            json={"reviews": texts[start : start + batch_size]},
            timeout=REQUEST_TIMEOUT_SECONDS,
        )
        response.raise_for_status()
        scores += [item["positive"] for item in response.json()["predictions"]]
    return scores


def metric_differences(recorded: dict, measured: dict, tolerance: float) -> list[str]:
    problems = []
    for name in EXACT_METRICS:
        if measured[name] != recorded[name]:
            problems.append(f"{name} {measured[name]} differs from the recorded {recorded[name]}")
    for name in FLOAT_METRICS:
        if not math.isclose(measured[name], recorded[name], rel_tol=0, abs_tol=tolerance):
            problems.append(
                f"{name} {measured[name]!r} differs from the recorded {recorded[name]!r}"
            )
    return problems


def check_skew(
    base_url: str,
    bundle: LoadedBundle,
    split: Split,
    skew: SkewSettings,
    batch_size: int,
) -> CheckResult:
    result = CheckResult("skew")
    tolerance = skew.max_score_difference
    metadata = bundle.metadata
    with timed(result), requests.Session() as session:
        offline = positive_scores(bundle.model, split.test_texts)
        offline_metrics = metrics_from_scores(offline, split.test_labels, metadata.threshold)
        for problem in metric_differences(metadata.metrics, offline_metrics, tolerance):
            result.fail(f"offline: {problem}: the bundle does not reproduce its own evaluation")
        try:
            served = served_scores(session, base_url, split.test_texts, batch_size)
        except (requests.RequestException, ValueError, KeyError) as error:
            result.fail(f"the service did not score the held-out reviews: {error}")
            return result
        differences = [abs(a - b) for a, b in zip(offline, served, strict=True)]
        worst = max(differences, default=0.0)
        beyond = sum(difference > tolerance for difference in differences)
        predicted = [int(score >= metadata.threshold) for score in served]
        result.figures = {
            "reviews": len(served),
            "max_score_difference": worst,
            "reviews_beyond_tolerance": beyond,
            "served_accuracy": sum(
                p == y for p, y in zip(predicted, split.test_labels, strict=True)
            ) / max(len(served), 1),
            "recorded_accuracy": metadata.metrics["accuracy"],
        }  # fmt: skip
        if beyond:
            result.fail(
                f"{beyond} of {len(served)} held-out reviews are scored differently by the "
                f"service (largest difference {worst:.3g}, tolerance {tolerance:.12g})"
            )
        served_metrics = metrics_from_scores(served, split.test_labels, metadata.threshold)
        for problem in metric_differences(metadata.metrics, served_metrics, tolerance):
            result.fail(f"served: {problem}")
    return result


def check_latency(base_url: str, texts: list[str], budget: LatencyBudgetSettings) -> CheckResult:
    """Single-review /predict/ calls, one after another, each timed."""
    result = CheckResult("latency")
    chosen = [texts[i % len(texts)] for i in range(budget.requests)]
    timings_ms: list[float] = []
    with timed(result), requests.Session() as session:
        for text in chosen:
            started = time.perf_counter()
            try:
                response = session.post(
                    f"{base_url}/predict/", json={"review": text}, timeout=REQUEST_TIMEOUT_SECONDS
                )
            except requests.RequestException as error:
                result.fail(f"a /predict/ call failed: {error}")
                return result
            timings_ms.append((time.perf_counter() - started) * 1000)
            if response.status_code != 200:
                result.fail(f"/predict/ answered {response.status_code}: {response.text[:200]}")
                return result
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
    return result
