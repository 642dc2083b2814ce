"""What git says about the checkout: commit, content of the working tree, release tags.

Evidence from the dev gate is bound to the *content* it checked (a git tree id), not only
to a commit, so that a build from the same uncommitted tree still matches it and a build
after any edit does not.
"""

import fnmatch
import os
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from delivery.errors import DeliveryError

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Source:
    commit: str
    dirty: bool
    # The tree id of the working tree as `git add -A` would stage it (ignored files left
    # out). Equal to HEAD^{tree} when the tree is clean.
    tree: str

    @property
    def revision(self) -> str:
        return f"{self.commit}-dirty" if self.dirty else self.commit


def git(*args: str, env: dict[str, str] | None = None, root: Path = ROOT) -> str:
    try:
        done = subprocess.run(  # noqa: S603
            ["git", "-C", str(root), *args],  # noqa: S607
            capture_output=True, text=True, check=False, timeout=60,
            env={**os.environ, **(env or {})},
        )  # fmt: skip
    except OSError as error:
        raise DeliveryError(f"git cannot run: {error}") from None
    if done.returncode != 0:
        raise DeliveryError(f"git {' '.join(args)} failed: {done.stderr.strip()}")
    return done.stdout.strip()


def read_source(root: Path = ROOT) -> Source:
    """The checkout's commit, whether it has changes, and its working tree's id."""
    commit = git("rev-parse", "HEAD", root=root)
    dirty = bool(git("status", "--porcelain", root=root))
    # A throwaway index, so the user's staging area is never touched.
    with tempfile.TemporaryDirectory() as scratch:
        index = {"GIT_INDEX_FILE": str(Path(scratch) / "index")}
        git("read-tree", "HEAD", env=index, root=root)
        git("add", "--all", env=index, root=root)
        tree = git("write-tree", env=index, root=root)
    return Source(commit, dirty, tree)


def release_tags(commit: str, pattern: str, root: Path = ROOT) -> list[str]:
    """Tags matching `pattern` that point at `commit`, highest version first."""
    tags = git("tag", "--points-at", commit, "--sort=-v:refname", root=root).splitlines()
    return [tag for tag in tags if fnmatch.fnmatchcase(tag, pattern)]


def tag_commit(tag: str, root: Path = ROOT) -> str | None:
    """The commit `tag` points at; None when there is no such tag."""
    try:
        return git("rev-parse", "--verify", "--quiet", f"refs/tags/{tag}^{{commit}}", root=root)
    except DeliveryError:
        return None


def create_tag(tag: str, commit: str, root: Path = ROOT) -> None:
    git("tag", tag, commit, root=root)
