"""The checkout as git sees it: commit, a working tree's content, release tags.

One definition of a dirty tree for everything that records where code came from (a
model bundle, an image label, gate evidence): any change `git status` shows, untracked
files included, ignored files not. Evidence from the dev gate is bound to the tree's
content (a git tree id) rather than only to a commit, so a build from the same
uncommitted tree still matches it and a build after any edit does not.
"""

import fnmatch
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

from sentiment_release.support.errors import ReleaseError
from sentiment_release.support.process import Finished, run

COMMIT = re.compile(r"^[0-9a-f]{40}$")
# What a release tag may be called: plain characters only, whatever git would allow.
TAG_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,127}")


@dataclass(frozen=True)
class Source:
    commit: str
    dirty: bool
    # The tree id of the working tree as `git add --all` would stage it (ignored files
    # left out). Equal to HEAD^{tree} when the tree is clean.
    tree: str

    @property
    def revision(self) -> str:
        """The commit, "-dirty" added when the tree has changes: what records carry."""
        return revision(self.commit, self.dirty)


def revision(commit: str, dirty: bool) -> str:
    return f"{commit}-dirty" if dirty else commit


class Git:
    def __init__(self, root: Path):
        self.root = root

    def run(
        self,
        *args: str,
        env: dict[str, str] | None = None,
        input: bytes | None = None,
        check: bool = True,
        timeout: float = 120,
    ) -> Finished:
        """`git -C ROOT ARGS`, bytes in and out."""
        return run(
            ["git", "-C", str(self.root), *args],
            env=env, input=input, check=check, text=False, timeout=timeout,
        )  # fmt: skip

    def __call__(self, *args: str, env: dict[str, str] | None = None) -> str:
        """`git ARGS`' output as stripped text; a failure is a ReleaseError."""
        return self.run(*args, env=env).stdout.decode().strip()

    def head(self) -> str:
        return self("rev-parse", "HEAD")

    def is_dirty(self) -> bool:
        return bool(self("status", "--porcelain", "--untracked-files=all"))

    def source(self) -> Source:
        """The checkout's commit, whether it has changes, and its working tree's id."""
        commit, dirty = self.head(), self.is_dirty()
        # A throwaway index and object store (the repository's read through it), so the
        # user's staging area and the repository are never written: it works on a
        # read-only checkout, as in a check's sandbox.
        objects = Path(self("rev-parse", "--absolute-git-dir")) / "objects"
        with tempfile.TemporaryDirectory() as scratch:
            (Path(scratch) / "objects").mkdir()
            env = {
                "GIT_INDEX_FILE": str(Path(scratch) / "index"),
                "GIT_OBJECT_DIRECTORY": str(Path(scratch) / "objects"),
                "GIT_ALTERNATE_OBJECT_DIRECTORIES": str(objects),
            }
            self("read-tree", "HEAD", env=env)
            self("add", "--all", env=env)
            tree = self("write-tree", env=env)
        return Source(commit, dirty, tree)

    def revision(self) -> str:
        """The commit, with "-dirty" for changes; "unknown" outside a git checkout."""
        try:
            return revision(self.head(), self.is_dirty())
        except ReleaseError:
            return "unknown"

    def release_tags(self, commit: str, pattern: str) -> list[str]:
        """Tags matching `pattern` that point at `commit`, highest version first."""
        if not COMMIT.fullmatch(commit):  # an image label, say: never an option to git
            return []
        tags = self("tag", "--points-at", commit, "--sort=-v:refname").splitlines()
        return [tag for tag in tags if fnmatch.fnmatchcase(tag, pattern)]

    def is_tag_name(self, tag: str) -> bool:
        """A plain tag name git accepts: not an option, no revision syntax (~ ^ : @{), no
        character a shell would read (; $ ` quotes, spaces, newlines)."""
        if not TAG_NAME.fullmatch(tag):
            return False
        return self.run("check-ref-format", f"refs/tags/{tag}", check=False).ok

    def tag_commit(self, tag: str) -> str | None:
        """The commit the tag named `tag` points at; None when there is no such tag (or
        `tag` is not a tag's name: `v1.0~1` names a revision, not a tag)."""
        if not self.is_tag_name(tag):
            return None
        ref = f"refs/tags/{tag}^{{commit}}"
        done = self.run("rev-parse", "--verify", "--quiet", ref, check=False)
        return done.stdout.decode().strip() if done.ok else None

    def is_on_branch(self, commit: str, branch: str, remote: str) -> bool:
        """Whether `commit` is `branch` or before it, on the remote's copy or the local one."""
        if not COMMIT.fullmatch(commit):
            return False
        for ref in (f"refs/remotes/{remote}/{branch}", f"refs/heads/{branch}"):
            if self.run("merge-base", "--is-ancestor", commit, ref, check=False).ok:
                return True
        return False

    def is_ancestor(self, older: str, newer: str) -> bool:
        """Whether `older` comes strictly before `newer` in history."""
        if older == newer or not (COMMIT.fullmatch(older) and COMMIT.fullmatch(newer)):
            return False
        return self.run("merge-base", "--is-ancestor", older, newer, check=False).ok

    def create_tag(self, tag: str, commit: str) -> None:
        if not self.is_tag_name(tag) or not COMMIT.fullmatch(commit):
            raise ReleaseError(f"refusing to tag {commit!r} as {tag!r}")
        self("tag", tag, commit)
