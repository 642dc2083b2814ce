"""What goes into the image's Python environment: the runtime's own wheel, built from a
clean copy of its sources and refused if anything but the runtime is in it."""

import shutil
import zipfile
from pathlib import Path

import pytest

from sentiment_release.delivery.errors import DeliveryError
from sentiment_release.delivery.image import RUNTIME_SOURCES, runtime_wheel
from tests.conftest import ROOT


def top_level_names(wheel: Path) -> set[str]:
    with zipfile.ZipFile(wheel) as archive:
        return {name.split("/", 1)[0] for name in archive.namelist()}


@pytest.fixture
def sources(tmp_path) -> Path:
    root = tmp_path / "checkout"
    root.mkdir()
    for name in (*RUNTIME_SOURCES, "release"):
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, root / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(source, root / name)
    return root


def test_the_runtime_wheel_holds_the_runtime_only_whatever_an_earlier_build_left(sources, tmp_path):
    stale = sources / "build" / "lib" / "sentiment_release"  # an earlier build in the checkout
    stale.mkdir(parents=True)
    (stale / "secret_release.py").write_text("TOKEN = 'x'\n")
    wheel = runtime_wheel(sources, tmp_path)
    names = top_level_names(wheel)
    assert names == {"sentiment", "sentiment_service-0.2.0.dist-info"}
    # Not built in the checkout: build/ holds what was there, nothing more.
    assert sorted(str(p.relative_to(sources)) for p in (sources / "build").rglob("*")) == [
        "build/lib",
        "build/lib/sentiment_release",
        "build/lib/sentiment_release/secret_release.py",
    ]


def test_a_runtime_that_packs_another_package_is_refused(sources, tmp_path):
    """Say a pyproject.toml edit maps one more top-level package into the wheel."""
    pyproject = sources / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace(
        '"sentiment.serving.settings"]',
        '"sentiment.serving.settings", "support"]\n'
        'package-dir = {"support" = "sentiment/model"}'))  # fmt: skip
    with pytest.raises(DeliveryError, match=r"the runtime's wheel holds \['support'\]"):
        runtime_wheel(sources, tmp_path)
