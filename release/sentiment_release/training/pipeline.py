"""The scikit-learn pipeline and the split it is fitted on."""

from dataclasses import dataclass

from sklearn.feature_extraction.text import CountVectorizer, TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline

from sentiment_release.training.config import TrainingSettings
from sentiment_release.training.dataset import Dataset


@dataclass(frozen=True)
class Split:
    train_texts: list[str]
    train_labels: list[int]
    test_texts: list[str]
    test_labels: list[int]


def split_dataset(dataset: Dataset, test_size: float, seed: int) -> Split:
    """Stratified train/held-out split; the same data and seed give the same split."""
    train_x, test_x, train_y, test_y = train_test_split(
        dataset.texts,
        dataset.labels,
        test_size=test_size,
        random_state=seed,
        stratify=dataset.labels,
    )
    return Split(list(train_x), list(train_y), list(test_x), list(test_y))


def build_pipeline(config: TrainingSettings) -> Pipeline:
    vectorizer_class = TfidfVectorizer if config.vectorizer.kind == "tfidf" else CountVectorizer
    vectorizer_options = {
        "ngram_range": (1, config.vectorizer.ngram_max),
        "min_df": config.vectorizer.min_df,
        "lowercase": True,
    }
    if config.vectorizer.kind == "tfidf":
        vectorizer_options["sublinear_tf"] = config.vectorizer.sublinear_tf
    return Pipeline(
        [
            ("vectorizer", vectorizer_class(**vectorizer_options)),
            (
                "classifier",
                LogisticRegression(
                    C=config.classifier.C,
                    max_iter=config.classifier.max_iter,
                    solver="liblinear",
                    random_state=config.seed,
                ),
            ),
        ]
    )


def drop_process_state(model: Pipeline) -> Pipeline:
    """Removes what makes two identical fits pickle differently.

    scikit-learn's vectorizers cache `id(self.stop_words)` (a memory address) to skip
    re-validating stop words; it differs in every process, so without this the same
    data and seed would give different model files. Every transform sets it again, so
    this runs just before serializing; without the cache the check simply reruns.
    """
    vars(model.named_steps["vectorizer"]).pop("_stop_words_id", None)
    return model


def hyperparameters(config: TrainingSettings) -> dict:
    """What the bundle records about how the model was made."""
    return {
        "vectorizer": config.vectorizer.model_dump(),
        "classifier": {**config.classifier.model_dump(), "kind": "logistic_regression"},
    }
