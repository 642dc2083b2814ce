"""What people (and CI, with values from tags and records) hand to make reaches the CLI as
data: one argument each, exactly as given. Neither make nor the shell runs any of it."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

HOSTILE = [
    "x; touch {canary}",
    "$(touch {canary})",
    "`touch {canary}`",
    "$(shell touch {canary})",
    "x'; touch {canary}; echo '",
    'x"; touch {canary}; echo "',
    "two words {canary}",
]
# target, variable, the option it is passed with (None: a positional argument)
VERBS = [
    ("deploy", "ENV", None),
    ("deploy", "IMAGE", "--image"),
    ("render", "IMAGE", "--image"),
    ("promote", "TO", "--to"),
    ("promote", "IMAGE", "--image"),
    ("promote", "RELEASE", "--release-tag"),
    ("promote", "DATA_DIR", "--data-dir"),
    ("pipeline", "UNTIL", "--until"),
    ("pipeline", "RELEASE", "--release-tag"),
    ("rollback", "ENV", None),
    ("history", "ENV", None),
    ("smoke", "ENV", None),
    ("gate", "ENV", None),
    ("train", "ENV", "--env"),
    ("evidence", "IMAGE", "--image"),
    ("loadtest", "PROFILE", None),
    ("loadtest", "ENV", "--env"),
    ("loadtest", "URL", "--url"),
    ("loadtest", "CONFIRM", "--confirm"),
]


@pytest.fixture
def stand_in(tmp_path) -> Path:
    """A virtualenv make takes as set up, whose `sentiment` records its arguments."""
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    sentiment = venv / "bin" / "sentiment"
    sentiment.write_text(
        f"#!{sys.executable}\nimport json, sys\n"
        f"open({str(tmp_path / 'argv.jsonl')!r}, 'a').write(json.dumps(sys.argv[1:]) + '\\n')\n"
    )
    sentiment.chmod(0o755)
    (venv / ".installed").touch()
    # Newer than everything the venv is made from, so make takes it as set up.
    # (The Makefile's prerequisites of .installed; globbing for them walked .venv each time.)
    made_from = [ROOT / "pyproject.toml", ROOT / "release" / "pyproject.toml",
                 ROOT / "client" / "pyproject.toml",
                 ROOT / "requirements" / "dev.lock"]  # fmt: skip
    later = max(path.stat().st_mtime for path in made_from) + 60
    os.utime(venv / ".installed", (later, later))
    return venv


@pytest.mark.parametrize(("target", "variable", "option"), VERBS)
@pytest.mark.parametrize("template", HOSTILE)
def test_a_hostile_value_is_one_argument_and_runs_nothing(
    stand_in, tmp_path, target, variable, option, template
):
    canary = tmp_path / "ran"
    value = template.format(canary=canary)
    done = subprocess.run(
        ["make", "--no-print-directory", "-s", target, f"VENV={stand_in}", f"{variable}={value}"],
        cwd=ROOT, capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert not canary.exists(), f"make {target} {variable}=... ran a command"
    calls = [json.loads(line) for line in (tmp_path / "argv.jsonl").read_text().splitlines()]
    [argv] = [call for call in calls if call[0] == target]  # (`keys create` may run first)
    assert argv[0] == target
    if option is None:
        assert argv[1] == value
    else:
        assert argv[argv.index(option) + 1] == value


@pytest.mark.parametrize(("target", "variable", "option"), VERBS)
def test_a_value_with_a_line_break_is_refused_before_anything_runs(
    stand_in, tmp_path, target, variable, option
):
    """make would split a recipe at the line break: the value is refused instead."""
    canary = tmp_path / "ran"
    done = subprocess.run(
        ["make", "--no-print-directory", "-s", target, f"VENV={stand_in}",
         f"{variable}=x\ntouch {canary}"],
        cwd=ROOT, capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip
    assert done.returncode != 0
    assert f"{variable} holds a line break" in done.stderr
    assert not canary.exists()
    assert not (tmp_path / "argv.jsonl").exists()
