"""The service's settings: layering, validation, and what no file or variable may change."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from sentiment.serving.settings import ConfigError, environments, load_settings
from sentiment_release.cli.main import cli
from tests.conftest import ROOT, SERVICE_CONFIG_DIR, make_settings

ENVIRONMENTS = environments(SERVICE_CONFIG_DIR)


def test_the_environments_are_the_config_files():
    assert ENVIRONMENTS == ["dev", "prod", "stage", "test"]


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_every_environment_loads(environment):
    settings = load_settings(environment, config_dir=SERVICE_CONFIG_DIR)
    assert settings.environment == environment
    assert settings.gunicorn.workers == 2
    assert not settings.service.debug


def test_environment_files_override_base():
    assert load_settings("dev", config_dir=SERVICE_CONFIG_DIR).service.log_level == "DEBUG"
    assert load_settings("prod", config_dir=SERVICE_CONFIG_DIR).service.log_level == "INFO"
    assert load_settings("prod", config_dir=SERVICE_CONFIG_DIR).service.customer_facing
    assert not load_settings("stage", config_dir=SERVICE_CONFIG_DIR).service.customer_facing


def test_app_env_picks_the_environment(monkeypatch):
    monkeypatch.setenv("APP_ENV", "stage")
    assert load_settings(config_dir=SERVICE_CONFIG_DIR).environment == "stage"
    monkeypatch.delenv("APP_ENV")
    assert load_settings(config_dir=SERVICE_CONFIG_DIR).environment == "dev"


@pytest.mark.parametrize("name", ["production", "base", "kustomization", "../prod", "Prod"])
def test_only_an_environment_with_a_config_file_is_one(monkeypatch, name):
    monkeypatch.setenv("APP_ENV", name)
    with pytest.raises(ConfigError, match="not an environment"):
        load_settings(config_dir=SERVICE_CONFIG_DIR)


def test_an_unknown_environment_lists_the_known_ones():
    with pytest.raises(ConfigError, match=r"production.yaml does not exist \(environments: dev"):
        load_settings("production", config_dir=SERVICE_CONFIG_DIR)


def test_a_new_environment_is_a_file(tmp_path):
    config = tmp_path / "config"
    shutil.copytree(SERVICE_CONFIG_DIR, config)
    (config / "uat.yaml").write_text("service:\n  customer_facing: true\nauth:\n  required: true\n")
    settings = load_settings("uat", config_dir=config)
    assert settings.environment == "uat"
    assert settings.service.customer_facing
    assert "uat" in environments(config)


def test_environment_variables_override_single_keys():
    settings = make_settings("test", **{"service.port": 9123, "gunicorn.workers": 3})
    assert settings.service.port == 9123
    assert settings.gunicorn.workers == 3
    assert settings.service.max_batch_size == 1000  # untouched keys keep their values


@pytest.mark.parametrize(
    ("overrides", "named"),
    [
        ({"service.port": "eighty"}, "service.port"),
        ({"service.port": 70000}, "service.port"),
        ({"gunicorn.workers": 0}, "gunicorn.workers"),
        ({"service.log_level": "LOUD"}, "service.log_level"),
        ({"service.prot": 1}, "service.prot"),
        ({"gunicorn.worker_class": "eventlet"}, "gunicorn.worker_class"),
        # gunicorn would quietly run gthread instead.
        ({"gunicorn.worker_class": "sync"}, "gunicorn: worker_class sync runs one thread"),
    ],
)
def test_bad_values_stop_loading_with_the_key_named(overrides, named):
    with pytest.raises(ConfigError, match=named.replace(".", r"\.")):
        make_settings("dev", **overrides)


def test_unknown_and_invalid_keys_in_files_are_named(tmp_path):
    (tmp_path / "base.yaml").write_text((SERVICE_CONFIG_DIR / "base.yaml").read_text())
    (tmp_path / "dev.yaml").write_text("service:\n  port: -1\nservce:\n  port: 1\n")
    with pytest.raises(ConfigError) as error:
        load_settings("dev", config_dir=tmp_path)
    assert "service.port" in str(error.value)
    assert "servce" in str(error.value)
    assert "dev.yaml" in str(error.value)


def test_training_settings_are_not_the_service_settings(tmp_path):
    """They moved to config/training.yaml: in the service's files they are unknown keys."""
    (tmp_path / "base.yaml").write_text((SERVICE_CONFIG_DIR / "base.yaml").read_text())
    (tmp_path / "dev.yaml").write_text("training:\n  seed: 1\n")
    with pytest.raises(ConfigError, match="training"):
        load_settings("dev", config_dir=tmp_path)


def test_unreadable_files_are_named_not_a_traceback(tmp_path):
    (tmp_path / "base.yaml").write_text((SERVICE_CONFIG_DIR / "base.yaml").read_text())
    (tmp_path / "dev.yaml").write_bytes(b"service:\n  log_level: \xff\n")
    with pytest.raises(ConfigError, match=r"dev\.yaml is not UTF-8 text"):
        load_settings("dev", config_dir=tmp_path)
    (tmp_path / "dev.yaml").write_text("{}")
    (tmp_path / "base.yaml").unlink()
    (tmp_path / "base.yaml").mkdir()
    with pytest.raises(ConfigError, match=r"base\.yaml cannot be read"):
        load_settings("dev", config_dir=tmp_path)


def test_broken_or_missing_files_are_named(tmp_path):
    (tmp_path / "dev.yaml").write_text("{}")
    with pytest.raises(ConfigError, match=r"base.yaml does not exist"):
        load_settings("dev", config_dir=tmp_path)
    (tmp_path / "base.yaml").write_text("service: [unclosed\n")
    with pytest.raises(ConfigError, match=r"base.yaml is not valid YAML"):
        load_settings("dev", config_dir=tmp_path)


@pytest.mark.parametrize(
    ("key", "message"),
    [
        ("service.debug", "debug mode is refused"),
        ("service.log_review_text", "review texts are never logged"),
    ],
)
def test_customer_facing_environments_refuse_debug_and_review_logging(key, message):
    assert getattr(make_settings("stage", **{key: "true"}).service, key.split(".")[1])
    with pytest.raises(ConfigError, match=f"{message} \\(prod is customer-facing\\)"):
        make_settings("prod", **{key: "true"})


@pytest.mark.parametrize(
    "variable", ["SENTIMENT_ENVIRONMENT", "SENTIMENT_SERVICE__CUSTOMER_FACING"]
)
def test_what_only_a_file_sets_cannot_be_overridden_sideways(monkeypatch, variable):
    monkeypatch.setenv(variable, "false")
    with pytest.raises(ConfigError, match=f"{variable} is not an override"):
        load_settings("prod", config_dir=SERVICE_CONFIG_DIR)


def test_config_command_prints_the_effective_config(monkeypatch):
    monkeypatch.chdir(ROOT)
    monkeypatch.setenv("SENTIMENT_SERVICE__MAX_BATCH_SIZE", "7")
    result = CliRunner().invoke(cli, ["config", "--env", "prod"])
    assert result.exit_code == 0, result.output
    printed = yaml.safe_load(result.output)
    assert printed["environment"] == "prod"
    assert printed["service"]["max_batch_size"] == 7
    assert printed["service"]["log_level"] == "INFO"


def test_config_command_reports_bad_config_without_a_traceback(monkeypatch):
    monkeypatch.chdir(ROOT)
    monkeypatch.setenv("SENTIMENT_SERVICE__DEBUG", "true")
    result = CliRunner().invoke(cli, ["config", "--env", "prod"])
    assert result.exit_code == 1
    assert "service.debug: debug mode is refused" in result.output
    assert "Traceback" not in result.output


def test_serving_with_a_bad_environment_stops_with_a_message(monkeypatch):
    """`sentiment serve` (make serve) and `sentiment-serve` (the image) check first."""
    monkeypatch.chdir(ROOT)
    result = CliRunner().invoke(cli, ["serve", "--env", "production"])
    assert result.exit_code == 1
    assert "'production' is not an environment" in result.output
    done = subprocess.run(
        [str(Path(sys.executable).parent / "sentiment-serve"), "--env", "production"],
        cwd=ROOT, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 1
    assert "Error: 'production' is not an environment" in done.stderr
    assert "Traceback" not in done.stderr
