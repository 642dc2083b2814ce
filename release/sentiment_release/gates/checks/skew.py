"""`skew`: the deployed service scores the model's own held-out reviews as the model does.

The bundle's metadata records the data it was evaluated on (file hashes), the split
(seed, size) and the metrics. Rebuilding that held-out split, scoring it with the
bundle offline and through the service, and getting the recorded metrics back from
both proves the deployed model is the one that was evaluated, served the same way.
"""

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import requests
from pydantic import Field

from sentiment.model import LoadedBundle, Scorer
from sentiment.model.bundle import read_verified_compiled
from sentiment.model.scoring import predicted_class
from sentiment_release.gates.checks.base import (
    Check,
    CheckOptions,
    CheckResult,
    GateContext,
    register,
)
from sentiment_release.support.errors import ReleaseError
from sentiment_release.training import load_dataset

if TYPE_CHECKING:
    from sentiment_release.training import Split

# scikit-learn takes about a second to import, and every `sentiment` command loads the
# check kinds: the functions that need it import it when a skew check runs.

REQUEST_TIMEOUT_SECONDS = 30
EXACT_METRICS = ("confusion_matrix", "support")
FLOAT_METRICS = ("accuracy", "f1", "roc_auc")


class SkewError(ReleaseError):
    """The check cannot be made (data differs from what the bundle was evaluated on)."""


def held_out_split(bundle: LoadedBundle, data_dir: Path) -> "Split":
    """The bundle's held-out split, rebuilt from its recorded data files and split."""
    from sentiment_release.training import split_dataset

    metadata = bundle.metadata
    try:
        # Feedback trains, never tests (sentiment_release/training/train.py): the split is the base
        # data's.
        sources = [item["source"] for item in metadata.dataset["files"]
                   if item["source"] != "feedback"]  # fmt: skip
        skipped = metadata.dataset["skipped_lines"] > 0
        expected = metadata.split.get("base_dataset_sha256", metadata.dataset["sha256"])
        test_size, seed = metadata.split["test_size"], metadata.split["seed"]
    except (KeyError, TypeError) as error:
        raise SkewError(
            f"model {metadata.version} does not record its data or split ({error})"
        ) from None
    dataset = load_dataset(data_dir, sources, skip_bad_lines=skipped)
    if dataset.fingerprint()["sha256"] != expected:
        raise SkewError(
            f"the data in {data_dir} is not the data model {metadata.version} was "
            f"evaluated on (dataset sha256 {str(expected)[:12]}...)"
        )
    return split_dataset(dataset, test_size, seed)


def held_out(context: GateContext) -> "Split":
    return context.shared("held-out", lambda: held_out_split(context.bundle, context.data_dir))


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


def compiles_to_itself(bundle: LoadedBundle) -> bool:
    """The compiled scorer is, byte for byte, what the bundle's scikit-learn model compiles
    to (the samples and the held-out reviews only cover the n-grams they contain)."""
    from sentiment_release.training import NotCompilable, compile_pipeline

    shipped = read_verified_compiled(bundle.path, bundle.metadata)
    try:
        return shipped == compile_pipeline(bundle.model)
    except NotCompilable:
        return False


def metric_differences(recorded: dict, measured: dict, tolerance: float) -> list[str]:
    problems = []
    for name in EXACT_METRICS:
        if measured[name] != recorded.get(name):
            problems.append(
                f"{name} {measured[name]} differs from the recorded {recorded.get(name)}"
            )
    for name in FLOAT_METRICS:
        value = recorded.get(name)
        if value is None or not math.isclose(measured[name], value, rel_tol=0, abs_tol=tolerance):
            problems.append(f"{name} {measured[name]!r} differs from the recorded {value!r}")
    return problems


class SkewOptions(CheckOptions):
    max_score_difference: float = Field(ge=0, le=1)


@register
class Skew(Check):
    kind = "skew"
    Options = SkewOptions
    needs_service = True

    def check(self, context: GateContext, result: CheckResult) -> None:
        from sentiment_release.training import metrics_from_scores

        tolerance = self.options.max_score_difference
        bundle = context.bundle
        metadata = bundle.metadata
        if metadata.compiled is not None and not compiles_to_itself(bundle):
            result.fail(
                f"{metadata.compiled.file} is not what the bundle's model compiles to: it "
                "could serve scores the model never gave"
            )
        split = held_out(context)
        offline = Scorer(bundle).scores(split.test_texts)
        offline_metrics = metrics_from_scores(offline, split.test_labels, metadata.threshold)
        for problem in metric_differences(metadata.metrics, offline_metrics, tolerance):
            result.fail(f"offline: {problem}: the bundle does not reproduce its own evaluation")
        batch_size = context.service_settings.service.max_batch_size
        with requests.Session() as session:
            session.headers.update(context.api_headers)
            try:
                served = served_scores(session, context.service_url, split.test_texts, batch_size)
            except (requests.RequestException, ValueError, KeyError, TypeError) as error:
                result.fail(f"the service did not score the held-out reviews: {error}")
                return
        if len(served) != len(offline):
            result.fail(f"the service scored {len(served)} of {len(offline)} held-out reviews")
            return
        differences = [abs(a - b) for a, b in zip(offline, served, strict=True)]
        worst = max(differences, default=0.0)
        beyond = sum(difference > tolerance for difference in differences)
        predicted = [predicted_class(score, metadata.threshold) for score in served]
        correct = sum(p == y for p, y in zip(predicted, split.test_labels, strict=True))
        result.figures = {
            "reviews": len(served),
            "max_score_difference": worst,
            "reviews_beyond_tolerance": beyond,
            "served_accuracy": correct / max(len(served), 1),
            "recorded_accuracy": metadata.metrics.get("accuracy"),
        }
        if beyond:
            result.fail(
                f"{beyond} of {len(served)} held-out reviews are scored differently by the "
                f"service (largest difference {worst:.3g}, tolerance {tolerance:.12g})"
            )
        served_metrics = metrics_from_scores(served, split.test_labels, metadata.threshold)
        for problem in metric_differences(metadata.metrics, served_metrics, tolerance):
            result.fail(f"served: {problem}")

    @classmethod
    def summary(cls, name: str, figures: dict[str, Any]) -> str:
        if "max_score_difference" not in figures:
            return name
        return (
            f"{name} max {figures['max_score_difference']:.1e} over {figures['reviews']} held-out"
        )
