"""The base image is pinned by digest: a tag alone is refused when the config is read, and
`make pin-base-image` rewrites that one line and nothing else."""

import shutil

import pytest

from sentiment_release.delivery import base_image
from sentiment_release.delivery.config import load_delivery_settings
from sentiment_release.delivery.errors import DeliveryError
from sentiment_release.support.errors import ReleaseError
from tests.conftest import CONFIG_DIR

DIGEST = "sha256:" + "a" * 64
NEWER = "sha256:" + "b" * 64


@pytest.mark.parametrize(
    "reference",
    [
        f"docker.io/library/python:3.11-slim-bookworm@{DIGEST}",
        f"ghcr.io/owner/base@{DIGEST}",
        f"127.0.0.1:5000/pytest/base:seed@{DIGEST}",
        "localhost/debian-python:bookworm",
        "localhost/debian-python",
    ],
)
def test_a_pinned_or_home_made_base_is_accepted(reference):
    assert base_image.check_pinned(reference) == reference


@pytest.mark.parametrize(
    "reference",
    [
        "docker.io/library/python:3.11-slim-bookworm",
        "python:3.11-slim-bookworm",
        f"python@{DIGEST}",  # Docker Hub's short names: the registry is implied, not named
        f"docker.io/library/python:3.11@sha256:{'a' * 63}",
        f"docker.io/library/python:3.11@{DIGEST};id",
        f"docker.io/library/python:$(id)@{DIGEST}",
        f"docker.io/library/python:3.11 @{DIGEST}",
        f"docker.io/library/python:3.11@{DIGEST}\n",
        "localhost/debian-python:`id`",
        "--network=host",
        "",
    ],
)
def test_a_tag_or_a_hostile_value_is_refused(reference):
    with pytest.raises(ValueError, match="not pinned by digest"):
        base_image.check_pinned(reference)


def test_the_committed_config_is_pinned():
    pinned = load_delivery_settings(CONFIG_DIR).build.base_image
    assert base_image.PINNED_BASE.fullmatch(pinned)


def test_a_config_with_a_tag_alone_does_not_load(tmp_path, monkeypatch):
    monkeypatch.delenv("DELIVERY_BUILD__BASE_IMAGE", raising=False)
    shutil.copytree(CONFIG_DIR, tmp_path / "config")
    config = tmp_path / "config" / "delivery.yaml"
    text = config.read_text()
    config.write_text(text.replace(load_delivery_settings(CONFIG_DIR).build.base_image, "python:3"))
    with pytest.raises(ReleaseError, match=r"build\.base_image: not pinned by digest"):
        load_delivery_settings(tmp_path / "config")


CONFIG = """\
# Images
build:
  # base_image: an old value, in a comment
  base_image: {value}   # pinned
  platforms: [manylinux_2_28_x86_64]
registry:
  repository: sentiment-api
"""


class Registry:
    """Answers for NAME:TAG what a registry would, and remembers what it was asked."""

    def __init__(self, digest: str = NEWER) -> None:
        self.digest = digest
        self.asked: list[str] = []

    def __call__(self, tagged: str) -> str:
        self.asked.append(tagged)
        return self.digest


def test_the_pin_rewrites_only_its_own_line(tmp_path):
    config = tmp_path / "delivery.yaml"
    config.write_text(CONFIG.format(value=f"docker.io/library/python:3.11-slim@{DIGEST}"))
    registry = Registry()

    before, after = base_image.pin(config, registry)

    assert registry.asked == ["docker.io/library/python:3.11-slim"]
    assert (before, after) == (
        f"docker.io/library/python:3.11-slim@{DIGEST}",
        f"docker.io/library/python:3.11-slim@{NEWER}",
    )
    assert config.read_text() == CONFIG.format(value=after)


def test_a_tag_alone_is_pinned(tmp_path):
    config = tmp_path / "delivery.yaml"
    config.write_text(CONFIG.format(value="ghcr.io/owner/base:1"))
    assert base_image.pin(config, Registry())[1] == f"ghcr.io/owner/base:1@{NEWER}"


def test_an_unmoved_tag_leaves_the_file_untouched(tmp_path):
    config = tmp_path / "delivery.yaml"
    config.write_text(CONFIG.format(value=f"ghcr.io/owner/base:1@{NEWER}"))
    written = config.stat().st_mtime_ns
    assert base_image.pin(config, Registry()) == (f"ghcr.io/owner/base:1@{NEWER}",) * 2
    assert config.stat().st_mtime_ns == written


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("localhost/debian-python:bookworm", "names no registry tag to follow"),
        (f"ghcr.io/owner/base@{DIGEST}", "names no registry tag to follow"),
    ],
)
def test_a_base_with_no_tag_to_follow_is_not_pinned(tmp_path, value, problem):
    config = tmp_path / "delivery.yaml"
    config.write_text(CONFIG.format(value=value))
    registry = Registry()
    with pytest.raises(DeliveryError, match=problem):
        base_image.pin(config, registry)
    assert registry.asked == []
    assert config.read_text() == CONFIG.format(value=value)


def test_a_base_image_line_outside_build_is_not_rewritten(tmp_path):
    config = tmp_path / "delivery.yaml"
    text = "build:\n  python_version: '3.11'\nother:\n  base_image: ghcr.io/owner/base:1\n"
    config.write_text(text)
    with pytest.raises(DeliveryError, match=r"not build\.base_image"):
        base_image.pin(config, Registry())
    assert config.read_text() == text


def test_two_base_image_lines_are_refused(tmp_path):
    config = tmp_path / "delivery.yaml"
    config.write_text(CONFIG.format(value="ghcr.io/owner/base:1") + "  base_image: x:1\n")
    with pytest.raises(DeliveryError, match="found 2"):
        base_image.pin(config, Registry())
