"""The git helper against real repositories: one definition of a dirty tree, the tree id
evidence is bound to, and tag names that are names."""

import subprocess
from pathlib import Path

import pytest

from sentiment_release.support.errors import ReleaseError
from sentiment_release.support.git import Git


def git(repository: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repository), *args], capture_output=True,
                          text=True, check=True).stdout.strip()  # fmt: skip


@pytest.fixture
def repository(tmp_path) -> Path:
    git(tmp_path, "init", "-q", "-b", "main")
    git(tmp_path, "config", "user.email", "t@example.com")
    git(tmp_path, "config", "user.name", "t")
    (tmp_path / ".gitignore").write_text("ignored/\n")
    (tmp_path / "app.py").write_text("print('one')\n")
    git(tmp_path, "add", ".")
    git(tmp_path, "commit", "-q", "-m", "one")
    (tmp_path / "app.py").write_text("print('two')\n")
    git(tmp_path, "commit", "-q", "-am", "two")
    git(tmp_path, "tag", "v1.0.0")
    return tmp_path


def test_a_clean_tree_is_its_commit(repository):
    source = Git(repository).source()
    assert not source.dirty
    assert source.revision == git(repository, "rev-parse", "HEAD")
    assert source.tree == git(repository, "rev-parse", "HEAD^{tree}")


@pytest.mark.parametrize(
    ("change", "dirty"),
    [
        (lambda root: (root / "app.py").write_text("print('three')\n"), True),
        (lambda root: (root / "new_module.py").write_text("x = 1\n"), True),  # untracked counts
        (
            lambda root: (root / "ignored").mkdir() or (root / "ignored" / "x").write_text("x"),
            False,
        ),
    ],
    ids=["edited", "untracked", "ignored"],
)
def test_one_definition_of_dirty_for_every_record(repository, change, dirty):
    helper = Git(repository)
    clean_tree = helper.source().tree
    change(repository)
    source = helper.source()
    assert source.dirty is dirty
    assert helper.revision().endswith("-dirty") is dirty
    assert (source.tree != clean_tree) is dirty  # what evidence is bound to changes with it
    assert git(repository, "diff", "--cached", "--name-only") == ""  # the index is untouched


def test_a_tag_name_is_a_name_not_a_revision(repository):
    helper = Git(repository)
    head = git(repository, "rev-parse", "HEAD")
    assert helper.tag_commit("v1.0.0") == head
    for revision in ("v1.0.0~1", "v1.0.0^", "v1.0.0^{/one}", "v1.0.0@{0}", "--all", "v9"):
        assert helper.tag_commit(revision) is None, revision
    assert helper.release_tags(head, "v*") == ["v1.0.0"]
    assert helper.release_tags("--all", "v*") == []


def test_tags_are_created_only_with_a_name_and_a_commit(repository):
    helper = Git(repository)
    head = git(repository, "rev-parse", "HEAD")
    helper.create_tag("v1.0.1-local.abc", head)
    assert helper.tag_commit("v1.0.1-local.abc") == head
    for tag, commit in (("--force", head), ("v2", "HEAD~1"), ("v2~1", head)):
        with pytest.raises(ReleaseError, match="refusing to tag"):
            helper.create_tag(tag, commit)


def test_outside_a_checkout_the_revision_is_unknown(tmp_path):
    assert Git(tmp_path).revision() == "unknown"


def test_a_commit_is_on_a_branch_once_merged_into_it(repository):
    helper = Git(repository)
    on_main = git(repository, "rev-parse", "HEAD")
    git(repository, "checkout", "-q", "-b", "side")
    (repository / "side.py").write_text("x = 1\n")
    git(repository, "add", "side.py")
    git(repository, "commit", "-q", "-m", "side")
    side = git(repository, "rev-parse", "HEAD")
    assert helper.is_on_branch(on_main, "main", "origin")
    assert not helper.is_on_branch(side, "main", "origin")
    assert not helper.is_on_branch("HEAD", "main", "origin")  # a commit id, nothing else
    git(repository, "checkout", "-q", "main")
    git(repository, "merge", "-q", "--ff-only", "side")
    assert helper.is_on_branch(side, "main", "origin")


def test_one_commit_is_before_another_only_strictly_and_only_by_id(repository):
    helper = Git(repository)
    two = git(repository, "rev-parse", "HEAD")
    one = git(repository, "rev-parse", "HEAD~1")
    assert helper.is_ancestor(one, two)
    assert not helper.is_ancestor(two, one)
    assert not helper.is_ancestor(two, two)
    assert not helper.is_ancestor("HEAD~1", "HEAD")  # commit ids, nothing else


@pytest.mark.parametrize(
    "hostile", ["v1;id", "v$(id)", "v`id`", "v1 2", "v1\nid", "v'1", 'v"1', "v1~1", "-v1", ""]
)
def test_a_tag_name_with_anything_a_shell_or_git_would_read_is_refused(repository, hostile):
    assert not Git(repository).is_tag_name(hostile)
    assert Git(repository).tag_commit(hostile) is None
