"""gunicorn_conf.py takes every setting from the environment's config.

It is read in a subprocess, as gunicorn would: it sets PROMETHEUS_MULTIPROC_DIR and
imports the app, which must not leak into the test process.
"""

import fcntl
import json
import os
import shutil
import stat
import subprocess
import sys
from importlib import resources
from pathlib import Path

import pytest

from sentiment.serving.rate_limit import REFUSALS_TABLE, TABLE, TABLE_BYTES
from sentiment.serving.runtime_dir import LOCK_FILE
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
    "logger_class",
]
READ_CONF = f"""
import json, os, runpy, sys
conf = runpy.run_path(sys.argv[1])
shown = {{key: conf[key] for key in {KEYS!r}}}
shown["control_socket_disable"] = conf["control_socket_disable"]
shown["root_log_level"] = conf["logconfig_dict"]["root"]["level"]
shown["runtime_dir"] = os.environ["PROMETHEUS_MULTIPROC_DIR"]
shown["runtime_files"] = sorted(os.listdir(shown["runtime_dir"]))
print(json.dumps(shown))
"""


@pytest.fixture
def load_conf(tmp_path):
    def load(environment: str, check: bool = True, **overrides) -> dict:
        env = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
        env.update({"APP_ENV": environment, env_name("gunicorn.runtime_dir"): str(tmp_path)})
        env.update({env_name(key): str(value) for key, value in overrides.items()})
        env = {key: value for key, value in env.items() if value != "None"}
        path = resources.files("sentiment.serving") / "gunicorn_conf.py"
        output = subprocess.run(
            [sys.executable, "-c", READ_CONF, str(path)],
            env=env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=False,
        )
        if not check:
            return {"returncode": output.returncode, "stderr": output.stderr}
        assert output.returncode == 0, output.stderr
        return json.loads(output.stdout.splitlines()[-1])

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


def test_the_runtime_directory_starts_empty_but_for_fresh_tables_and_is_private(
    load_conf, tmp_path
):
    stale = tmp_path / "counter_123.db"
    stale.write_bytes(b"old samples")
    (tmp_path / TABLE).write_bytes(b"\xff" * TABLE_BYTES)
    conf = load_conf("test")
    assert conf["runtime_dir"] == str(tmp_path)
    assert conf["runtime_files"] == sorted([LOCK_FILE, REFUSALS_TABLE, TABLE])
    assert (tmp_path / TABLE).read_bytes() == bytes(TABLE_BYTES)
    assert stat.S_IMODE(tmp_path.stat().st_mode) == 0o700


def test_unset_each_start_gets_a_private_directory_of_its_own(load_conf, tmp_path):
    runs = [load_conf("test", **{"gunicorn.runtime_dir": None}) for _ in range(2)]
    first, second = (Path(run["runtime_dir"]) for run in runs)
    assert first != second
    assert tmp_path not in (first, second)
    for directory in (first, second):  # the subprocess did not stop a server: still there
        assert stat.S_IMODE(directory.stat().st_mode) == 0o700
        assert directory.name.startswith("sentiment-")
        shutil.rmtree(directory)


def test_a_second_server_on_a_busy_runtime_directory_refuses_and_touches_nothing(
    load_conf, tmp_path
):
    """Found under attack: a start that failed (its port was busy) wiped the running
    server's metrics, and its draining mark made the running one unready for good."""
    samples = tmp_path / "counter_42.db"
    samples.write_bytes(b"the running server's samples")
    with open(tmp_path / LOCK_FILE, "a") as held:  # as the running server's master holds it
        fcntl.flock(held, fcntl.LOCK_EX)
        refused = load_conf("test", check=False)
    assert refused["returncode"] != 0
    assert "is the runtime directory of a server that is running" in refused["stderr"]
    assert refused["stderr"].count("\n") == 1  # one line, no traceback
    assert samples.read_bytes() == b"the running server's samples"


def test_gunicorn_builds_no_access_line_of_its_own(load_conf):
    """The app writes the access line. Given a logging config, gunicorn's own logger built
    one for every request (and dropped it): a third of a constant answer's time."""
    from gunicorn.config import Config
    from gunicorn.glogging import Logger

    from sentiment.serving.logs import GunicornLogger, logging_config

    conf = load_conf("prod")
    assert conf["accesslog"] is None
    assert conf["logger_class"] == "sentiment.serving.logs.GunicornLogger"
    cfg = Config()
    cfg.set("logconfig_dict", logging_config("INFO"))
    assert Logger(cfg).access_log_enabled  # what gunicorn would do
    ours = GunicornLogger(cfg)
    assert ours.access_log_enabled is False
    assert ours.access(None, None, None, None) is None  # touches nothing it is given
