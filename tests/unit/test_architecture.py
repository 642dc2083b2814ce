"""The layers are a contract `make lint` checks: a forbidden import fails it."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

PACKAGES = ["sentiment", "client", "release/sentiment_release"]


@pytest.fixture
def checkout(tmp_path) -> Path:
    """The packages and the contracts, copied where an import can be added."""
    for package in PACKAGES:
        shutil.copytree(ROOT / package, tmp_path / package,
                        ignore=shutil.ignore_patterns("__pycache__"))  # fmt: skip
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    return tmp_path


def lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    path = os.pathsep.join([str(root), str(root / "release"), str(root / "client")])
    return subprocess.run(
        [str(Path(sys.executable).parent / "lint-imports"), "--no-cache"], cwd=root,
        env={**os.environ, "PYTHONPATH": path}, capture_output=True, text=True, check=False,
    )  # fmt: skip


def add_import(module: Path, line: str) -> None:
    module.write_text(module.read_text() + f"\n{line}  # noqa\n")


def test_the_contracts_hold_on_the_code_as_it_is(checkout):
    done = lint_imports(checkout)
    assert done.returncode == 0, done.stdout
    assert "Contracts: 5 kept, 0 broken." in done.stdout


@pytest.mark.parametrize(
    ("module", "line", "contract"),
    [
        (
            "sentiment/serving/api.py",
            "import sentiment_release.training.train",
            "The serving runtime never imports release",
        ),
        (
            "sentiment/serving/state.py",
            "import requests",
            "The serving runtime never imports release",
        ),
        (
            "sentiment/model/scoring.py",
            "import sentiment.serving.errors",
            "The model layer never imports serving",
        ),
        ("sentiment/model/bundle.py", "import flask", "The model layer never imports serving"),
        (
            "release/sentiment_release/training/train.py",
            "import sentiment_release.promotion.policy",
            "Release tooling follows",
        ),
        (
            "release/sentiment_release/delivery/image.py",
            "import sentiment_release.gates.runner",
            "Release tooling follows",
        ),
        (
            "release/sentiment_release/promotion/rules.py",
            "import sentiment_release.cli.main",
            "Release tooling follows",
        ),
        (
            "client/sentiment_client/client.py",
            "import sentiment.serving.errors",
            "The API client stands",
        ),
        (
            "release/sentiment_release/gates/checks/quality.py",
            "import sentiment_release.training.quality",
            "The other stages use training through its public names only",
        ),
        (
            "client/sentiment_client/errors.py",
            "import sentiment_release.support.errors",
            "The API client stands",
        ),
    ],
)
def test_a_forbidden_import_fails_lint(checkout, module, line, contract):
    add_import(checkout / module, line)
    done = lint_imports(checkout)
    assert done.returncode == 1
    assert f"{contract}" in done.stdout
    assert "BROKEN" in done.stdout
