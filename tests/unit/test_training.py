import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli.main import cli
from model_registry import ModelRegistry
from model_registry.bundle import MODEL_FILE
from tests.conftest import FIXTURE_DATA, LENIENT_GATE, env_name, make_settings
from training.evaluate import quality_gate
from training.train import train


def test_same_data_and_seed_give_the_same_model_file_and_metrics(tmp_path):
    """Two separate processes (different hash seeds, different memory layouts)."""
    published = []
    for name, hash_seed in (("a", "1"), ("b", "2")):
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        env.update({env_name(key): str(value) for key, value in LENIENT_GATE.items()})
        env[env_name("model.registry_dir")] = str(tmp_path / name)
        subprocess.run(
            [str(Path(sys.executable).parent / "sentiment"), "train", "--data-dir", FIXTURE_DATA],
            env=env,
            cwd=FIXTURE_DATA.parents[2],
            check=True,
            capture_output=True,
        )
        published.append(ModelRegistry(tmp_path / name).load().metadata)
    first, second = published
    assert first.sha256 == second.sha256
    assert first.metrics == second.metrics
    assert first.dataset == second.dataset


def test_a_different_seed_gives_a_different_split(tmp_path):
    base = {**LENIENT_GATE, "model.registry_dir": tmp_path / "a"}
    one = train(make_settings(**base), FIXTURE_DATA).published
    base["model.registry_dir"] = tmp_path / "b"
    other = train(make_settings(**base, **{"training.seed": 7}), FIXTURE_DATA).published
    assert one.split["seed"] != other.split["seed"]
    assert one.sha256 != other.sha256


def test_the_bundle_records_how_the_model_was_made(trained_registry):
    metadata = ModelRegistry(trained_registry).load().metadata
    assert metadata.labels == {"0": "negative", "1": "positive"}
    assert set(metadata.metrics) >= {"accuracy", "f1", "roc_auc", "confusion_matrix"}
    matrix = metadata.metrics["confusion_matrix"]
    assert sum(matrix.values()) == metadata.split["test_rows"] == 15
    assert metadata.split["train_rows"] == 57
    assert metadata.dataset["rows"] == 72
    assert [f["source"] for f in metadata.dataset["files"]] == ["yelp", "amazon", "imdb"]
    assert set(metadata.libraries) == {"python", "scikit-learn", "joblib", "numpy", "scipy"}
    assert metadata.hyperparameters["vectorizer"]["kind"] == "tfidf"
    assert metadata.git_commit


def test_quality_gate_names_each_failing_metric():
    gate = make_settings().training.quality_gate
    passing = {"accuracy": 0.9, "f1": 0.9, "roc_auc": 0.95}
    assert quality_gate(passing, gate) == []
    failures = quality_gate({**passing, "f1": 0.5, "roc_auc": 0.6}, gate)
    assert [f.metric for f in failures] == ["f1", "roc_auc"]
    assert str(failures[0]) == "f1 0.5000 is below the minimum 0.8000"


def test_a_model_below_the_gate_is_not_published(tmp_path):
    settings = make_settings(
        **{"model.registry_dir": tmp_path, "training.quality_gate.min_roc_auc": 1.0}
    )
    result = train(settings, FIXTURE_DATA)
    assert result.published is None
    assert [f.metric for f in result.gate_failures][-1] == "roc_auc"
    assert ModelRegistry(tmp_path).versions() == []


@pytest.fixture
def in_repo(monkeypatch, tmp_path):
    monkeypatch.chdir(FIXTURE_DATA.parents[2])
    monkeypatch.setenv(env_name("model.registry_dir"), str(tmp_path / "registry"))
    monkeypatch.delenv("SENTIMENT_DATA_DIR", raising=False)
    return tmp_path


def test_train_command_publishes_and_can_skip_when_a_model_exists(in_repo, monkeypatch):
    for key, value in LENIENT_GATE.items():
        monkeypatch.setenv(env_name(key), str(value))
    runner = CliRunner()
    result = runner.invoke(cli, ["train", "--data-dir", str(FIXTURE_DATA)])
    assert result.exit_code == 0, result.output
    assert "held-out: accuracy" in result.output
    version = ModelRegistry(in_repo / "registry").current_version()
    assert f"published model {version}" in result.output

    again = runner.invoke(cli, ["train", "--if-missing", "--data-dir", str(FIXTURE_DATA)])
    assert again.exit_code == 0
    assert f"model {version} is current; not training" in again.output
    assert len(ModelRegistry(in_repo / "registry").versions()) == 1

    listing = runner.invoke(cli, ["models"])
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

    registry = ModelRegistry(trained_registry)
    path = registry.path_of(registry.current_version()) / MODEL_FILE
    model = joblib.load(path)
    assert model.predict(["I love it"]).tolist() == [1]
    assert json.loads((path.parent / "metadata.json").read_text())["model_file"] == MODEL_FILE
