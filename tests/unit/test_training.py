"""Training: determinism, the split, the bundle's record, the quality gate, the command."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from sentiment.model import ModelFolder
from sentiment.model.bundle import MODEL_FILE
from sentiment_release.cli.main import cli
from sentiment_release.support.errors import ReleaseError
from sentiment_release.training.config import load_training_config
from sentiment_release.training.dataset import load_dataset
from sentiment_release.training.pipeline import split_dataset
from sentiment_release.training.quality import quality_gate
from tests.conftest import (
    CONFIG_DIR,
    FIXTURE_DATA,
    LENIENT_GATE,
    ROOT,
    env_name,
    make_training_config,
    train_fixture_model,
)


def test_same_data_and_seed_give_the_same_model_file_and_metrics(tmp_path):
    """Two separate processes (different hash seeds, different memory layouts)."""
    published = []
    for name, hash_seed in (("a", "1"), ("b", "2")):
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        env.update({env_name(key): str(value) for key, value in LENIENT_GATE.items()})
        env[env_name("model.bundles_dir")] = str(tmp_path / name)
        subprocess.run(
            [str(Path(sys.executable).parent / "sentiment"), "train", "--data-dir", FIXTURE_DATA],
            env=env,
            cwd=ROOT,
            check=True,
            capture_output=True,
        )
        published.append(ModelFolder(tmp_path / name).load().metadata)
    first, second = published
    assert first.sha256 == second.sha256
    assert first.metrics == second.metrics
    assert first.dataset == second.dataset


def test_the_seed_decides_the_split_and_the_split_is_stratified():
    dataset = load_dataset(FIXTURE_DATA, ["yelp", "amazon", "imdb"])
    one, again = split_dataset(dataset, 0.2, 42), split_dataset(dataset, 0.2, 42)
    other = split_dataset(dataset, 0.2, 7)
    assert one.test_texts == again.test_texts
    assert one.test_texts != other.test_texts
    assert sorted(one.test_texts + one.train_texts) == sorted(other.test_texts + other.train_texts)
    share = sum(dataset.labels) / len(dataset.labels)
    for split in (one, other):
        assert abs(sum(split.test_labels) - share * len(split.test_labels)) <= 1


def test_a_different_seed_gives_a_different_model(tmp_path):
    one = train_fixture_model(tmp_path / "a").published
    other = train_fixture_model(tmp_path / "b", **{"training.seed": 7}).published
    assert (one.split["seed"], other.split["seed"]) == (42, 7)
    assert one.sha256 != other.sha256


def test_the_bundle_records_how_the_model_was_made(trained_registry):
    metadata = ModelFolder(trained_registry).load().metadata
    assert metadata.labels == {"0": "negative", "1": "positive"}
    assert set(metadata.metrics) >= {"accuracy", "f1", "roc_auc", "confusion_matrix"}
    matrix = metadata.metrics["confusion_matrix"]
    assert sum(matrix.values()) == metadata.split["test_rows"] == 15
    assert metadata.split["train_rows"] == 57
    assert metadata.dataset["rows"] == 72
    assert [f["source"] for f in metadata.dataset["files"]] == ["yelp", "amazon", "imdb"]
    assert set(metadata.libraries) == {"python", "scikit-learn", "joblib", "numpy", "scipy"}
    assert metadata.hyperparameters["vectorizer"]["kind"] == "tfidf"
    head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True,
                          text=True, check=True).stdout.strip()  # fmt: skip
    assert metadata.git_commit.removesuffix("-dirty") == head


def test_quality_gate_names_each_failing_metric():
    minimums = make_training_config(
        **{"training.quality_gate.min_f1": 0.8, "training.quality_gate.min_roc_auc": 0.88}
    ).training.quality_gate.minimums()
    passing = {"accuracy": 0.9, "f1": 0.9, "roc_auc": 0.95}
    assert quality_gate(passing, minimums) == []
    failures = quality_gate({**passing, "f1": 0.5, "roc_auc": 0.6}, minimums)
    assert [f.metric for f in failures] == ["f1", "roc_auc"]
    assert str(failures[0]) == "f1 0.5000 is below the minimum 0.8000"
    assert [f.metric for f in quality_gate({"accuracy": 0.9}, minimums)] == ["f1", "roc_auc"]


def test_a_model_below_the_gate_is_not_published(tmp_path):
    result = train_fixture_model(tmp_path, **{"training.quality_gate.min_roc_auc": 1.0})
    assert result.published is None
    assert [f.metric for f in result.gate_failures][-1] == "roc_auc"
    assert ModelFolder(tmp_path).versions() == []


def test_the_training_config_takes_variables_and_names_bad_keys(monkeypatch, tmp_path):
    monkeypatch.setenv("SENTIMENT_DATA_DIR", "/some/where")
    assert load_training_config(CONFIG_DIR).data_dir == Path("/some/where")
    (tmp_path / "training.yaml").write_text(
        (CONFIG_DIR / "training.yaml").read_text() + "gate:\n  x: 1\n"
    )
    with pytest.raises(ReleaseError, match=r"training.yaml \+ SENTIMENT_\* variables.*\n  gate"):
        load_training_config(tmp_path)


@pytest.fixture
def in_repo(monkeypatch, tmp_path):
    monkeypatch.chdir(ROOT)
    monkeypatch.setenv(env_name("model.bundles_dir"), str(tmp_path / "registry"))
    monkeypatch.delenv("SENTIMENT_DATA_DIR", raising=False)
    return tmp_path


def test_train_command_publishes_and_can_skip_when_a_model_exists(in_repo, monkeypatch):
    for key, value in LENIENT_GATE.items():
        monkeypatch.setenv(env_name(key), str(value))
    runner = CliRunner()
    result = runner.invoke(cli, ["train", "--data-dir", str(FIXTURE_DATA)])
    assert result.exit_code == 0, result.output
    assert "held-out: accuracy" in result.output
    version = ModelFolder(in_repo / "registry").current_version()
    assert f"published model {version}" in result.output

    again = runner.invoke(cli, ["train", "--if-missing", "--data-dir", str(FIXTURE_DATA)])
    assert again.exit_code == 0
    assert f"model {version} is current; not training" in again.output
    assert len(ModelFolder(in_repo / "registry").versions()) == 1

    listing = runner.invoke(cli, ["models", "list"])
    assert listing.output.startswith(f"* {version}")


def test_train_command_fails_when_the_gate_fails(in_repo, monkeypatch):
    monkeypatch.setenv(env_name("training.quality_gate.min_accuracy"), "1.0")
    monkeypatch.setenv(env_name("training.quality_gate.min_roc_auc"), "1.0")
    result = CliRunner().invoke(cli, ["train", "--data-dir", str(FIXTURE_DATA)])
    assert result.exit_code == 1
    assert "quality gate failed: accuracy" in result.output
    assert "the model was not published" in result.output
    assert not (in_repo / "registry" / "CURRENT").exists()


def test_train_command_offline_without_data_says_how_to_provide_it(in_repo, monkeypatch):
    monkeypatch.setenv(env_name("dataset.url"), "http://127.0.0.1:9/uci.zip")
    monkeypatch.setenv(env_name("dataset.cache_dir"), str(in_repo / "cache"))
    monkeypatch.setenv(env_name("dataset.download_timeout_seconds"), "2")
    result = CliRunner().invoke(cli, ["train"])
    assert result.exit_code == 1
    assert "--data-dir" in result.output
    assert "SENTIMENT_DATA_DIR" in result.output
    assert "Traceback" not in result.output


def test_train_command_reports_malformed_data(in_repo, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    for path in FIXTURE_DATA.glob("*_labelled.txt"):
        (data / path.name).write_bytes(path.read_bytes())
    with open(data / "yelp_labelled.txt", "a") as handle:
        handle.write("a line without a label\n")
    result = CliRunner().invoke(cli, ["train", "--data-dir", str(data)])
    assert result.exit_code == 1
    assert "yelp_labelled.txt:25: no tab" in result.output


def test_model_file_is_plain_joblib(trained_registry):
    import joblib

    registry = ModelFolder(trained_registry)
    path = registry.path_of(registry.current_version()) / MODEL_FILE
    model = joblib.load(path)
    assert model.predict(["I love it"]).tolist() == [1]
    assert json.loads((path.parent / "metadata.json").read_text())["model_file"] == MODEL_FILE
