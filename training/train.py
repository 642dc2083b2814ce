"""Training run: load the data, fit, evaluate, apply the gate, publish the bundle."""

import platform
import subprocess
from dataclasses import dataclass
from pathlib import Path

import joblib
import numpy
import scipy
import sklearn

from model_registry import BundleMetadata, ModelRegistry
from model_registry.bundle import serialize_model
from settings import Settings
from training.dataset import load_dataset
from training.evaluate import GateFailure, evaluate, quality_gate
from training.pipeline import build_pipeline, drop_process_state, hyperparameters, split_dataset

LABELS = {"0": "negative", "1": "positive"}


@dataclass(frozen=True)
class TrainingResult:
    metrics: dict
    dataset: dict
    gate_failures: list[GateFailure]
    published: BundleMetadata | None


def train(settings: Settings, data_dir: Path, skip_bad_lines: bool | None = None) -> TrainingResult:
    """Fits and evaluates a model; publishes it to the registry only if it passes the gate."""
    config = settings.training
    if skip_bad_lines is None:
        skip_bad_lines = settings.dataset.skip_bad_lines
    dataset = load_dataset(data_dir, settings.dataset.sources, skip_bad_lines)
    split = split_dataset(dataset, config.test_size, config.seed)

    model = build_pipeline(config).fit(split.train_texts, split.train_labels)
    metrics = evaluate(model, split.test_texts, split.test_labels, config.threshold)

    fingerprint = dataset.fingerprint()
    failures = quality_gate(metrics, config.quality_gate)
    if failures:
        return TrainingResult(metrics, fingerprint, failures, None)

    published = ModelRegistry(settings.model.registry_dir).publish(
        serialize_model(drop_process_state(model)),
        {
            "git_commit": git_commit(),
            "labels": LABELS,
            "threshold": config.threshold,
            "dataset": fingerprint,
            "split": {
                "method": "stratified",
                "test_size": config.test_size,
                "seed": config.seed,
                "train_rows": len(split.train_texts),
                "test_rows": len(split.test_texts),
            },
            "hyperparameters": hyperparameters(config),
            "metrics": metrics,
            "libraries": {
                "python": platform.python_version(),
                "scikit-learn": sklearn.__version__,
                "joblib": joblib.__version__,
                "numpy": numpy.__version__,
                "scipy": scipy.__version__,
            },
        },
    )
    return TrainingResult(metrics, fingerprint, [], published)


def git_commit() -> str:
    """The commit the code was trained from; "-dirty" marks uncommitted changes."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"],  # noqa: S607  (git from PATH, fixed arguments)
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],  # noqa: S607
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return f"{commit}-dirty" if dirty else commit
