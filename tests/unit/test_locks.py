"""The lock files pin every package with the hashes of its files, and every install from
them checks those hashes: a package whose file changed upstream is refused, not run."""

import re

import pytest

from tests.conftest import ROOT

LOCKS = ("requirements/runtime.lock", "requirements/runtime-scikit-learn.lock",
         "requirements/dev.lock")  # fmt: skip
# What only a bundle without a compiled scorer needs in the image.
SCIKIT_LEARN = {
    "cloudpickle",
    "joblib",
    "narwhals",
    "numpy",
    "scikit-learn",
    "scipy",
    "threadpoolctl",
}
PIN = re.compile(r"^([A-Za-z0-9_.-]+)==(\S+)")


def requirements(text: str) -> list[str]:
    """The requirements of a lock, each with its continuation lines joined."""
    joined = re.sub(r"\s*\\\n\s*", " ", text)
    return [line for line in joined.splitlines() if line and not line.startswith(("#", " "))]


@pytest.mark.parametrize("lock", LOCKS)
def test_every_pin_carries_the_hashes_of_its_files(lock):
    found = requirements((ROOT / lock).read_text())
    assert len(found) > 10
    for requirement in found:
        assert PIN.match(requirement), f"{lock}: {requirement!r} is not pinned with =="
        hashes = re.findall(r"--hash=sha256:([0-9a-f]{64})\b", requirement)
        assert hashes, f"{lock}: {requirement.split()[0]} has no hash"


def test_the_bootstrap_lock_pins_uv_pip_and_setuptools_with_hashes():
    found = requirements((ROOT / "requirements" / "bootstrap.lock").read_text())
    assert {PIN.match(r)[1] for r in found} == {"uv", "pip", "setuptools"}
    assert all(re.search(r"--hash=sha256:[0-9a-f]{64}\b", r) for r in found)


def pins(lock: str) -> dict[str, str]:
    return dict(PIN.match(r).groups() for r in requirements((ROOT / lock).read_text()))


def test_the_locks_agree_on_every_package_they_share():
    runtime, scikit_learn, dev = map(pins, LOCKS)
    for smaller, larger in ((runtime, scikit_learn), (scikit_learn, dev)):
        assert {name: v for name, v in smaller.items() if larger.get(name) != v} == {}


def test_the_lean_runtime_holds_no_scikit_learn_and_the_other_lock_adds_only_that():
    runtime, scikit_learn, _ = map(pins, LOCKS)
    assert not SCIKIT_LEARN & set(runtime)
    assert {"joblib", "numpy", "scikit-learn", "scipy"} <= set(scikit_learn)
    assert set(scikit_learn) - set(runtime) <= SCIKIT_LEARN


def test_installs_require_the_hashes():
    makefile = (ROOT / "Makefile").read_text()
    recipe = re.search(r"^\$\(VENV\)/\.installed:.*?\n((?:\t.*\n)+)", makefile, re.M)[1]
    installs = [line for line in re.sub(r" *\\\n\s*", " ", recipe).splitlines()
                if "install" in line or "$(UV)" in line]  # fmt: skip
    locked = [line for line in installs if " -r requirements/" in line]
    assert len(locked) == 2
    # pip installs uv from its lock, then uv the dev lock (with uv's own pins beside it).
    assert "pip install" in locked[0]
    assert "--require-hashes -r requirements/bootstrap.lock" in locked[0]
    assert "$(UV) --require-hashes -r requirements/bootstrap.lock" in locked[1]
    assert "-r requirements/dev.lock" in locked[1]
    # What is installed without a lock is this repository's own code, and nothing with it.
    assert [line for line in installs if line not in locked] == [
        "\tUV_PYTHON_DOWNLOADS=never $(UV) --no-deps -e . -e ./client -e ./release"
    ]
    assert "--generate-hashes" in makefile  # make lock keeps them
    assert "--require-hashes -r /wheels/runtime.lock" in (ROOT / "Dockerfile").read_text()
