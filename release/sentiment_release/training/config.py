"""The training configuration: config/training.yaml, then SENTIMENT_* variables
(SENTIMENT_TRAINING__SEED=7, SENTIMENT_DATA_DIR=...). It is not the service's: nothing
here ships in the image."""

from pathlib import Path
from typing import Literal

from pydantic import Field, HttpUrl, field_validator
from pydantic_settings import SettingsConfigDict

from sentiment.serving.settings.schema import Section, YamlSettings
from sentiment_release.support.config import load_yaml_settings

TRAINING_FILE = "training.yaml"
Source = Literal["yelp", "amazon", "imdb"]


class DatasetSettings(Section):
    sources: list[Source] = Field(min_length=1)
    url: HttpUrl
    cache_dir: Path
    download_timeout_seconds: float = Field(gt=0, le=600)
    skip_bad_lines: bool
    # Files in the UCI format added to the sources (`sentiment feedback export`): feedback
    # on production predictions, fingerprinted like the UCI files.
    feedback_files: list[Path] = Field(default_factory=list)

    @field_validator("sources")
    @classmethod
    def _unique(cls, sources: list[str]) -> list[str]:
        if len(set(sources)) != len(sources):
            raise ValueError("each source may be listed once")
        return sources


class VectorizerSettings(Section):
    kind: Literal["tfidf", "count"]
    ngram_max: int = Field(ge=1, le=3)
    min_df: int = Field(ge=1)
    sublinear_tf: bool


class ClassifierSettings(Section):
    C: float = Field(gt=0)
    max_iter: int = Field(ge=10)


class QualityGateSettings(Section):
    min_accuracy: float = Field(ge=0, le=1)
    min_f1: float = Field(ge=0, le=1)
    min_roc_auc: float = Field(ge=0, le=1)

    def minimums(self) -> dict[str, float]:
        return {"accuracy": self.min_accuracy, "f1": self.min_f1, "roc_auc": self.min_roc_auc}


class TrainingSettings(Section):
    test_size: float = Field(gt=0, lt=1)
    seed: int = Field(ge=0)
    threshold: float = Field(gt=0, lt=1)
    vectorizer: VectorizerSettings
    classifier: ClassifierSettings
    quality_gate: QualityGateSettings


class ChallengerPolicy(Section):
    # Refused when any metric on any comparison set is below the champion's by more.
    tolerance: float = Field(ge=0, le=1)
    # ... and when none is above the champion's by at least this much (an identical
    # retrain proposes nothing); above 0, so that equal is never better.
    min_gain: float = Field(gt=0, le=1)
    # The newest feedback rows kept out of the challenger's training, to compare on.
    recent_feedback: int = Field(ge=0)


class TrainingConfig(YamlSettings):
    model_config = SettingsConfigDict(
        env_prefix="SENTIMENT_", env_nested_delimiter="__", extra="forbid", frozen=True
    )

    # A local copy of the UCI files; when unset the training downloads them.
    data_dir: Path | None = None
    dataset: DatasetSettings
    training: TrainingSettings
    challenger: ChallengerPolicy


def load_training_config(config_dir: Path) -> TrainingConfig:
    return load_yaml_settings(TrainingConfig, config_dir / TRAINING_FILE, "SENTIMENT_* variables")
