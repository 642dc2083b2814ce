"""Turns the UCI sentiment data into a published model bundle: load -> fit -> evaluate ->
gate; and trains challengers against the champion. The other stages use what is named
here, never the modules behind it (`make lint` holds them to it). Each name is imported
on first use: scikit-learn takes about a second to import, and only what trains or
scores with it should pay for it."""

from importlib import import_module
from typing import TYPE_CHECKING, Any

# name -> the module of this package that holds it (train_model is train.train: a name
# of the package must not be one of its modules)
PUBLIC = {
    "TrainingConfig": "config",
    "load_training_config": "config",
    "data_dir_for": "data_source",
    "Dataset": "dataset",
    "SOURCE_FILES": "dataset",
    "load_dataset": "dataset",
    "quality_gate": "quality",
    "Split": "pipeline",
    "split_dataset": "pipeline",
    "NotCompilable": "compile",
    "compile_pipeline": "compile",
    "metrics_from_scores": "evaluate",
    "TrainingResult": "train",
    "train_model": "train",
    "Challenge": "challenger",
    "Comparison": "challenger",
    "challenge": "challenger",
    "comparison_markdown": "challenger",
    "write_report": "challenger",
}
RENAMED = {"train_model": "train"}
__all__ = [
    "SOURCE_FILES",
    "Challenge",
    "Comparison",
    "Dataset",
    "NotCompilable",
    "Split",
    "TrainingConfig",
    "TrainingResult",
    "challenge",
    "comparison_markdown",
    "compile_pipeline",
    "data_dir_for",
    "load_dataset",
    "load_training_config",
    "metrics_from_scores",
    "quality_gate",
    "split_dataset",
    "train_model",
    "write_report",
]

if TYPE_CHECKING:
    from sentiment_release.training.challenger import (
        Challenge,
        Comparison,
        challenge,
        comparison_markdown,
        write_report,
    )
    from sentiment_release.training.compile import NotCompilable, compile_pipeline
    from sentiment_release.training.config import TrainingConfig, load_training_config
    from sentiment_release.training.data_source import data_dir_for
    from sentiment_release.training.dataset import SOURCE_FILES, Dataset, load_dataset
    from sentiment_release.training.evaluate import metrics_from_scores
    from sentiment_release.training.pipeline import Split, split_dataset
    from sentiment_release.training.quality import quality_gate
    from sentiment_release.training.train import TrainingResult
    from sentiment_release.training.train import train as train_model


def __getattr__(name: str) -> Any:
    module = PUBLIC.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(f"{__name__}.{module}"), RENAMED.get(name, name))
