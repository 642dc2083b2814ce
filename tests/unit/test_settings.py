from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from cli.main import cli
from settings import ENVIRONMENTS, ConfigError, load_settings
from tests.conftest import CONFIG_DIR, make_settings


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_every_environment_loads(environment):
    settings = load_settings(environment, config_dir=CONFIG_DIR)
    assert settings.environment == environment
    assert settings.gunicorn.workers == 2
    assert not settings.service.debug


def test_environment_files_override_base():
    assert load_settings("dev", config_dir=CONFIG_DIR).service.log_level == "DEBUG"
    assert load_settings("prod", config_dir=CONFIG_DIR).service.log_level == "INFO"


def test_app_env_picks_the_environment(monkeypatch):
    monkeypatch.setenv("APP_ENV", "stage")
    assert load_settings(config_dir=CONFIG_DIR).environment == "stage"
    monkeypatch.delenv("APP_ENV")
    assert load_settings(config_dir=CONFIG_DIR).environment == "dev"


def test_unknown_environment_is_refused(monkeypatch):
    monkeypatch.setenv("APP_ENV", "production")
    with pytest.raises(ConfigError, match="'production' is not an environment"):
        load_settings(config_dir=CONFIG_DIR)


def test_environment_variables_override_single_keys():
    settings = make_settings("test", **{"service.port": 9123, "gunicorn.workers": 3})
    assert settings.service.port == 9123
    assert settings.gunicorn.workers == 3
    assert settings.service.max_batch_size == 64  # untouched keys keep their values


def test_sentiment_data_dir_is_the_data_directory(monkeypatch):
    monkeypatch.setenv("SENTIMENT_DATA_DIR", "/some/where")
    assert load_settings(config_dir=CONFIG_DIR).data_dir == Path("/some/where")


@pytest.mark.parametrize(
    ("overrides", "named"),
    [
        ({"service.port": "eighty"}, "service.port"),
        ({"service.port": 70000}, "service.port"),
        ({"gunicorn.workers": 0}, "gunicorn.workers"),
        ({"training.test_size": 1.5}, "training.test_size"),
        ({"service.log_level": "LOUD"}, "service.log_level"),
        ({"service.prot": 1}, "service.prot"),
    ],
)
def test_bad_values_stop_loading_with_the_key_named(overrides, named):
    with pytest.raises(ConfigError, match=named.replace(".", r"\.")):
        make_settings("dev", **overrides)


def test_unknown_and_invalid_keys_in_files_are_named(tmp_path):
    (tmp_path / "base.yaml").write_text((CONFIG_DIR / "base.yaml").read_text())
    (tmp_path / "dev.yaml").write_text("dataset:\n  sources: [yelp, twitter]\nservce:\n  port: 1\n")
    with pytest.raises(ConfigError) as error:
        load_settings("dev", config_dir=tmp_path)
    assert "dataset.sources.1" in str(error.value)
    assert "servce" in str(error.value)
    assert "dev.yaml" in str(error.value)


def test_broken_or_missing_files_are_named(tmp_path):
    with pytest.raises(ConfigError, match=r"base.yaml does not exist"):
        load_settings("dev", config_dir=tmp_path)
    (tmp_path / "base.yaml").write_text("service: [unclosed\n")
    (tmp_path / "dev.yaml").write_text("{}")
    with pytest.raises(ConfigError, match=r"base.yaml is not valid YAML"):
        load_settings("dev", config_dir=tmp_path)


@pytest.mark.parametrize(
    ("key", "message"),
    [
        ("service.debug", "debug mode is refused in prod"),
        ("service.log_review_text", "review texts are never logged in prod"),
    ],
)
def test_prod_refuses_debug_and_review_logging(key, message):
    assert getattr(make_settings("stage", **{key: "true"}).service, key.split(".")[1])
    with pytest.raises(ConfigError, match=message):
        make_settings("prod", **{key: "true"})


def test_environment_cannot_be_overridden_sideways(monkeypatch):
    monkeypatch.setenv("SENTIMENT_ENVIRONMENT", "prod")
    with pytest.raises(ConfigError, match="set APP_ENV instead"):
        load_settings("dev", config_dir=CONFIG_DIR)


def test_config_command_prints_the_effective_config(monkeypatch):
    monkeypatch.chdir(CONFIG_DIR.parent)
    monkeypatch.setenv("SENTIMENT_SERVICE__MAX_BATCH_SIZE", "7")
    result = CliRunner().invoke(cli, ["config", "--env", "prod"])
    assert result.exit_code == 0, result.output
    printed = yaml.safe_load(result.output)
    assert printed["environment"] == "prod"
    assert printed["service"]["max_batch_size"] == 7
    assert printed["service"]["log_level"] == "INFO"


def test_config_command_reports_bad_config_without_a_traceback(monkeypatch):
    monkeypatch.chdir(CONFIG_DIR.parent)
    monkeypatch.setenv("SENTIMENT_SERVICE__DEBUG", "true")
    result = CliRunner().invoke(cli, ["config", "--env", "prod"])
    assert result.exit_code == 1
    assert "service.debug: debug mode is refused in prod" in result.output
    assert "Traceback" not in result.output


def test_the_cli_imports_no_development_only_package():
    """The image installs only the runtime lock; `sentiment serve` must start there."""
    import subprocess
    import sys

    dev_only = ("filelock", "locust", "pytest", "gates", "promotion")
    done = subprocess.run(
        [sys.executable, "-c", f"import sys, cli.main; print([m for m in {dev_only!r} "
         "if m in sys.modules])"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert done.stdout.strip() == "[]"
