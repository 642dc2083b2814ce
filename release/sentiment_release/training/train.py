"""Training run: load the data, fit, evaluate, apply the gate, publish the bundle."""

import io
import platform
from dataclasses import dataclass
from pathlib import Path

import joblib
import numpy
import scipy
import sklearn

from sentiment.model import BundleMetadata, ModelFolder
from sentiment.model.drift import reference_stats
from sentiment.model.publish import publish
from sentiment.model.scoring import LABELS, positive_scores, vectorizer_vocabulary
from sentiment_release.training.compile import NotCompilable, compile_pipeline
from sentiment_release.training.config import TrainingConfig
from sentiment_release.training.dataset import Dataset, load_dataset
from sentiment_release.training.evaluate import evaluate
from sentiment_release.training.pipeline import (
    Split,
    build_pipeline,
    drop_process_state,
    hyperparameters,
    split_dataset,
)
from sentiment_release.training.quality import GateFailure, quality_gate

# Reviews every bundle is checked on before it serves, besides the first held-out ones:
# no known word, case and punctuation, negation, accents and emoji, one long review.
EDGE_CASES = (
    "qqqzx vvvwy",
    "GREAT great GrEaT!!! not bad... NOT good?",
    "Café déjà vu: the crème brûlée was naïve 😀",
    " ".join(["the food was good but the service was slow"] * 40),
)
HELD_OUT_SAMPLES = 24


def serialize_model(model: object) -> bytes:
    """The fitted pipeline as the bundle's model file (joblib, which the runtime reads)."""
    buffer = io.BytesIO()
    joblib.dump(model, buffer)
    return buffer.getvalue()


@dataclass(frozen=True)
class TrainingResult:
    metrics: dict
    dataset: dict
    gate_failures: list[GateFailure]
    published: BundleMetadata | None
    # Why the model has no compiled scorer (it is then served by scikit-learn), or None.
    not_compiled: str | None = None


def sample_scores(model: object, held_out: list[str]) -> list[dict]:
    """The reviews a loaded bundle must score as scikit-learn does now, with its scores."""
    texts = [*held_out[:HELD_OUT_SAMPLES], *EDGE_CASES]
    return [
        {"text": text, "positive": score}
        for text, score in zip(texts, positive_scores(model, texts), strict=True)
    ]


def train(
    config: TrainingConfig,
    data_dir: Path,
    registry: ModelFolder,
    git_commit: str,
    skip_bad_lines: bool | None = None,
) -> TrainingResult:
    """Fits and evaluates a model; publishes it to the registry only if it passes the gate.
    `git_commit` is the revision the code was trained from (recorded in the bundle)."""
    settings = config.training
    if skip_bad_lines is None:
        skip_bad_lines = config.dataset.skip_bad_lines
    base = load_dataset(data_dir, config.dataset.sources, skip_bad_lines)
    # Feedback trains, never tests: the held-out split (and so the quality gate) is the
    # base data's alone, whoever sent the feedback.
    feedback = load_dataset(data_dir, [], skip_bad_lines, config.dataset.feedback_files)
    dataset = Dataset(base.texts + feedback.texts, base.labels + feedback.labels,
                      base.files + feedback.files, base.bad_lines + feedback.bad_lines)  # fmt: skip
    split = split_dataset(base, settings.test_size, settings.seed)
    split = Split(split.train_texts + feedback.texts, split.train_labels + feedback.labels,
                  split.test_texts, split.test_labels)  # fmt: skip

    model = build_pipeline(settings).fit(split.train_texts, split.train_labels)
    metrics = evaluate(model, split.test_texts, split.test_labels, settings.threshold)

    fingerprint = dataset.fingerprint()
    failures = quality_gate(metrics, settings.quality_gate.minimums())
    if failures:
        return TrainingResult(metrics, fingerprint, failures, None)

    samples = sample_scores(model, split.test_texts)
    reference = reference_stats(
        split.test_texts, positive_scores(model, split.test_texts), vectorizer_vocabulary(model)
    )
    compiled, not_compiled = None, None
    try:
        compiled = compile_pipeline(model, [sample["text"] for sample in samples])
    except NotCompilable as error:
        not_compiled = str(error)
    published = publish(
        registry,
        serialize_model(drop_process_state(model)),
        {
            "git_commit": git_commit,
            "labels": LABELS,
            "threshold": settings.threshold,
            "dataset": fingerprint,
            "split": {
                "method": "stratified",
                "test_size": settings.test_size,
                "seed": settings.seed,
                "train_rows": len(split.train_texts),
                # What the held-out split was cut from: the base data, feedback apart.
                "base_dataset_sha256": base.fingerprint()["sha256"],
                "test_rows": len(split.test_texts),
            },
            "hyperparameters": hyperparameters(settings),
            "metrics": metrics,
            "libraries": {
                "python": platform.python_version(),
                "scikit-learn": sklearn.__version__,
                "joblib": joblib.__version__,
                "numpy": numpy.__version__,
                "scipy": scipy.__version__,
            },
            "samples": samples,
            "reference": reference.model_dump(),
        },
        compiled,
    )
    return TrainingResult(metrics, fingerprint, [], published, not_compiled)
