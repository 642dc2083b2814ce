"""gunicorn_conf.py takes every setting from the environment's config.

It is read in a subprocess, as gunicorn would: it sets PROMETHEUS_MULTIPROC_DIR and
imports the app, which must not leak into the test process.
"""

import json
import os
import subprocess
import sys
from importlib import resources

import pytest

from service.rate_limit import TABLE, TABLE_BYTES
from tests.conftest import ROOT, env_name

KEYS = [
    "worker_class",
    "workers",
    "threads",
    "preload_app",
    "bind",
    "timeout",
    "graceful_timeout",
    "accesslog",
]
READ_CONF = f"""
import json, os, runpy, sys
conf = runpy.run_path(sys.argv[1])
shown = {{key: conf[key] for key in {KEYS!r}}}
shown["control_socket_disable"] = conf["control_socket_disable"]
shown["root_log_level"] = conf["logconfig_dict"]["root"]["level"]
shown["metrics_dir"] = os.environ["PROMETHEUS_MULTIPROC_DIR"]
print(json.dumps(shown))
"""


@pytest.fixture
def load_conf(tmp_path):
    def load(environment: str, **overrides) -> dict:
        env = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
        env.update({"APP_ENV": environment, env_name("gunicorn.metrics_dir"): str(tmp_path)})
        env.update({env_name(key): str(value) for key, value in overrides.items()})
        path = resources.files("service") / "gunicorn_conf.py"
        output = subprocess.run(
            [sys.executable, "-c", READ_CONF, str(path)],
            env=env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        return json.loads(output.splitlines()[-1])

    return load


def test_defaults_are_two_preloaded_threaded_workers(load_conf):
    conf = load_conf("dev")
    assert (conf["worker_class"], conf["workers"], conf["threads"]) == ("gthread", 2, 32)
    assert conf["preload_app"] is True
    assert conf["bind"] == "127.0.0.1:8000"
    assert conf["control_socket_disable"] is True
    assert conf["accesslog"] is None
    assert conf["root_log_level"] == "DEBUG"


def test_settings_follow_config_overrides(load_conf):
    conf = load_conf(
        "prod",
        **{
            "gunicorn.workers": 5,
            "gunicorn.timeout_seconds": 12,
            "gunicorn.graceful_timeout_seconds": 7,
            "service.port": 9100,
            "service.host": "0.0.0.0",
        },
    )
    assert conf["workers"] == 5
    assert conf["timeout"] == 12
    assert conf["graceful_timeout"] == 7
    assert conf["bind"] == "0.0.0.0:9100"
    assert conf["root_log_level"] == "INFO"


def test_metrics_directory_starts_empty_but_for_a_fresh_rate_limit_table(load_conf, tmp_path):
    stale = tmp_path / "counter_123.db"
    stale.write_bytes(b"old samples")
    (tmp_path / TABLE).write_bytes(b"\xff" * TABLE_BYTES)
    conf = load_conf("test")
    assert conf["metrics_dir"] == str(tmp_path)
    assert list(tmp_path.iterdir()) == [tmp_path / TABLE]
    assert (tmp_path / TABLE).read_bytes() == bytes(TABLE_BYTES)
