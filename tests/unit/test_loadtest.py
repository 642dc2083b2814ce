"""Load-test profiles: the config, the shape locust follows, the figures read from its
CSVs, runs kept and compared, and prod refused unless confirmed by name."""

import csv
import json
import os
import re
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from sentiment_release.cli.main import cli
from sentiment_release.loadtest.figures import stage_figures
from sentiment_release.loadtest.profiles import LoadTestConfig, Profile, load_loadtest_config
from sentiment_release.loadtest.report import comparison_table, markdown
from sentiment_release.loadtest.run import LoadTester, Target, WebUI
from sentiment_release.loadtest.runs import (
    SUMMARY,
    LoadTestRuns,
    LoadTestSummary,
    target_directory_name,
)
from sentiment_release.support.errors import ReleaseError
from tests.conftest import CONFIG_DIR, ROOT

STAGES = [{"seconds": 10, "users": 5, "spawn_rate": 5},
          {"seconds": 5, "users": 50, "spawn_rate": 50}]  # fmt: skip
FIGURES = {"requests": 1000, "failures": 0, "failure_ratio": 0.0, "rps": 100.0,
           "median_ms": 3.0, "p95_ms": 10.0, "p99_ms": 20.0, "max_ms": 50.0}  # fmt: skip


def profile(**overrides) -> Profile:
    return Profile(**{"description": "Test.", "stages": STAGES, **overrides})


def summary(**overrides) -> LoadTestSummary:
    fields = {
        "target": "stage", "url": "http://127.0.0.1:8003", "environment": "stage",
        "image": None, "model_version": "v1", "profile": "stress", "description": "Test.",
        "stages": STAGES, "user_class": "ApiClient", "reviews": "fixture sentences",
        "started_at": datetime(2026, 11, 28, tzinfo=UTC), "seconds": 15.0,
        "overall": FIGURES, "endpoints": [], "stage_figures": [], "breaches": [],
    }  # fmt: skip
    return LoadTestSummary(**{**fields, **overrides})


class TestProfiles:
    def test_the_repository_has_the_five_profiles(self):
        config = load_loadtest_config(CONFIG_DIR)
        assert set(config.profiles) == {"smoke", "average", "stress", "spike", "soak"}
        assert (ROOT / config.locustfile).is_file()
        stress, spike = config.profiles["stress"], config.profiles["spike"]
        assert [stage.users for stage in stress.stages] == sorted(s.users for s in stress.stages)
        peak = max(stage.users for stage in spike.stages)
        assert peak >= 10 * spike.stages[0].users == 10 * spike.stages[-1].users

    @pytest.mark.parametrize(
        ("bad", "message"),
        [({"stages": []}, "at least 1 item"), ({"max_p95_ms": 0}, "greater than 0"),
         ({"user_class": "Api Client"}, "String should match pattern"),
         ({"stages": [{"seconds": 0, "users": 1, "spawn_rate": 1}]}, "greater than or equal")],
    )  # fmt: skip
    def test_a_bad_profile_is_named(self, bad, message):
        with pytest.raises(ValueError, match=message):
            profile(**bad)

    def test_a_profile_name_is_a_plain_word(self):
        with pytest.raises(ValueError, match="String should match pattern"):
            LoadTestConfig(locustfile="x", user_class="A", profiles={"../up": profile()})

    def test_thresholds_name_what_broke_them(self):
        strict = profile(max_failure_ratio=0.0, max_p95_ms=5, max_p99_ms=100)
        assert strict.breaches({**FIGURES, "failure_ratio": 0.01}) == [
            "failure ratio 0.0100 is above max_failure_ratio 0",
            "p95 10 ms is above max_p95_ms 5",
        ]
        assert profile().breaches(FIGURES) == []
        assert profile().breaches({**FIGURES, "requests": 0}) == ["the load test made no request"]


SHAPE_PROBE = """
import json, sys
sys.path.insert(0, "tests/load")
from shapes import ProfileShape
shape = ProfileShape()
ticks = []
for elapsed in (0, 9.9, 10, 14.9, 15, 100):
    shape.get_run_time = lambda elapsed=elapsed: elapsed
    ticks.append(shape.tick())
print(json.dumps(ticks))
"""


def test_the_shape_runs_the_stages_one_after_the_other():
    # In a process of its own: importing locust patches this one's sockets (gevent).
    env = {**os.environ, "SENTIMENT_LOADTEST_STAGES": json.dumps(STAGES)}
    done = subprocess.run([sys.executable, "-c", SHAPE_PROBE], cwd=ROOT, env=env,
                          capture_output=True, text=True, check=True)  # fmt: skip
    assert json.loads(done.stdout) == [[5, 5], [5, 5], [50, 50], [50, 50], None, None]
    env.pop("SENTIMENT_LOADTEST_STAGES")
    missing = subprocess.run([sys.executable, "-c", SHAPE_PROBE], cwd=ROOT, env=env,
                             capture_output=True, text=True, check=False)  # fmt: skip
    assert missing.returncode != 0
    assert "run this through `sentiment loadtest`" in missing.stderr


def test_stage_figures_come_from_the_running_totals(tmp_path):
    history = tmp_path / "locust_stats_history.csv"
    columns = ["Timestamp", "User Count", "Type", "Name", "95%", "99%", "Total Request Count",
               "Total Failure Count"]  # fmt: skip
    rows = [(1000 + second, 5 if second < 10 else 50, "", "Aggregated",
             "N/A" if second == 0 else ("10" if second < 10 else "80"),
             "N/A" if second == 0 else ("20" if second < 10 else "150"),
             second * 30 if second < 10 else 270 + (second - 9) * 200,
             0 if second < 12 else second - 11) for second in range(15)]  # fmt: skip
    with history.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(columns)
        writer.writerows(rows)
        writer.writerow((1001, 5, "POST", "/predict/", "1", "1", 1, 0))  # not aggregated
    first, second = stage_figures(history, profile())
    assert first == {"stage": 1, "users": 5, "rps": 30.0, "failures_per_second": 0.0,
                     "worst_p95_ms": 10.0, "worst_p99_ms": 20.0}  # fmt: skip
    assert second["users"] == 50
    assert second["rps"] == 200.0
    assert second["failures_per_second"] == 0.6  # from the last second of the stage before
    assert (second["worst_p95_ms"], second["worst_p99_ms"]) == (80.0, 150.0)


class TestRunsAndComparisons:
    def test_the_previous_run_is_the_newest_earlier_one_that_measured_the_same(self, tmp_path):
        runs = LoadTestRuns(tmp_path)
        made = {}
        for hour, name in ((1, "stress"), (2, "spike"), (3, "stress"), (4, "stress"),
                           (5, "stress"), (6, "stress")):  # fmt: skip
            moment = datetime(2026, 11, 28, hour, tzinfo=UTC)
            made[hour] = runs.new_run("stage", name, moment)
        (made[1] / SUMMARY).write_text(summary(overall={**FIGURES, "rps": 50.0}).to_json())
        (made[2] / SUMMARY).write_text(summary(profile="spike").to_json())
        (made[3] / SUMMARY).write_text("{damaged")
        (made[4] / SUMMARY).write_text(summary(url="http://elsewhere:8003").to_json())
        (made[5] / SUMMARY).write_text(summary(stages=STAGES[:1]).to_json())
        found = runs.previous(summary(), made[6])
        assert found is not None
        assert found[0] == made[1]
        assert made[6].parent == tmp_path / "stage"
        assert target_directory_name("url-127.0.0.1:8003/../x") == "url-127.0.0.1-8003-..-x"
        assert target_directory_name("..") == target_directory_name("/") == "target"
        assert runs.previous(summary(), made[1]) is None

    def test_the_table_gives_deltas_against_the_previous_run_and_the_gates(self, tmp_path):
        before = summary(overall={**FIGURES, "rps": 80.0, "p99_ms": 25.0, "failure_ratio": 0.01})
        gate = {"label": "test gate load", "figures": {**FIGURES, "rps": 20.0}}
        now = summary(gate_figures=[gate])
        table = comparison_table(now, (tmp_path / "20261128T010000000000Z-stress", before))
        lines = table.splitlines()
        assert lines[0] == ("| figure | this run | previous stress run (20261128T010000) | Δ | "
                            "test gate load | Δ |")  # fmt: skip
        assert lines[2] == "| requests/s | 100.0 | 80.0 | +25.0% | 20.0 | +400.0% |"
        assert lines[5] == "| p99 | 20 ms | 25 ms | -20.0% | 20 ms | +0.0% |"
        assert lines[7] == "| failures | 0.00% | 1.00% | -1.00 pt | 0.00% | +0.00 pt |"
        report = markdown(now, None)
        assert "No earlier `stress` run" in report
        assert "Within the profile's thresholds." in report
        assert "**Breached:** p99" in markdown(summary(breaches=["p99 900 ms is above"]), None)


class FakeSpace:
    """What LoadTester.check_allowed asks of the workspace: the environments' settings."""

    def __init__(self, tmp_path: Path):
        from tests.conftest import make_settings

        self.settings = {name: make_settings(name) for name in ("dev", "stage", "prod")}
        self.delivery = type("Delivery", (), {"state_dir": tmp_path})()

    def service_settings(self, environment: str):
        if environment not in self.settings:
            raise ReleaseError(f"no environment {environment}")
        return self.settings[environment]


PROD = {"service": {"environment": "prod"}}


@pytest.mark.parametrize(
    ("environment", "served", "confirm", "refused"),
    [("prod", None, None, "prod is customer-facing"), ("prod", None, "stage", "--confirm prod"),
     ("prod", None, "prod", None), ("stage", None, None, None),
     ("stage", PROD, "prod", "says it is prod, not stage"),
     (None, PROD, None, "--confirm prod"), (None, PROD, "prod", None),
     (None, {"service": {"environment": "elsewhere"}}, None, "not one of this repository's"),
     (None, {"service": {"environment": "elsewhere"}}, "elsewhere", None),
     (None, None, None, "cannot tell which environment"), (None, None, "url-x", None),
     (None, {"service": "prod"}, None, "cannot tell which environment")],
    ids=["prod", "prod, another name", "prod, confirmed", "stage", "stage that says it is prod",
         "a URL that is prod", "a URL that is prod, confirmed", "an unknown environment",
         "an unknown environment, confirmed", "a URL that says nothing",
         "a URL that says nothing, confirmed", "a URL that says something else"],
)  # fmt: skip
def test_customer_facing_or_unknown_only_when_confirmed_by_name(tmp_path, environment, served,
                                                                confirm, refused):  # fmt: skip
    tester = LoadTester(FakeSpace(tmp_path), load_loadtest_config(CONFIG_DIR), print)
    target = Target(environment or "url-x", "http://127.0.0.1:1", None, environment, None)
    if refused:
        with pytest.raises(ReleaseError, match=re.escape(refused)):
            tester.check_allowed(target, served, confirm)
    else:
        tester.check_allowed(target, served, confirm)


@pytest.mark.parametrize(
    ("argv", "message"),
    [(["loadtest", "huge", "--url", "http://127.0.0.1:1"], "'huge' is not one of smoke"),
     (["loadtest", "smoke"], "give one of --env ENV and --url URL"),
     (["loadtest", "smoke", "--env", "nowhere"], "'nowhere' is not one of dev"),
     (["loadtest", "smoke", "--url", "http://h/?q=1"], "is not an http(s) URL")],
)  # fmt: skip
def test_the_command_line_is_checked_before_anything_runs(argv, message):
    done = CliRunner().invoke(cli, argv)
    assert done.exit_code == 2
    assert message in done.output


def test_the_web_ui_listens_on_this_machine_only_under_a_path_nobody_can_guess(tmp_path):
    tester = LoadTester(FakeSpace(tmp_path), load_loadtest_config(CONFIG_DIR), print)
    first, second = WebUI(8089), WebUI(8089)
    argv = tester._mode(first)
    assert argv[argv.index("--web-host") + 1] == "127.0.0.1"
    assert argv[argv.index("--web-base-path") + 1] == first.base_path
    assert "--headless" not in argv
    assert first.base_path != second.base_path
    assert len(first.base_path) >= 20
    assert first.url == f"http://127.0.0.1:8089{first.base_path}/"
    assert tester._mode(None) == ["--headless", "--only-summary"]
