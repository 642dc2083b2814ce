"""Evidence and ledgers on a git branch: the append-only merge, save, pull and push."""

import json
import subprocess
from pathlib import Path

import pytest

from sentiment_release.promotion.state_branch import (
    StateBranch,
    StateConflictError,
    StateTamperedError,
    merge,
)
from sentiment_release.support.errors import ReleaseError

BRANCH = "delivery-state"
RECORD_A = "20261125T101010000000Z-dev-0123456789ab"
RECORD_B = "20261125T111111000000Z-test-abcdefabcdef"


def git(repository: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-C", str(repository), *args], capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


def make_clone(origin: Path, path: Path) -> Path:
    subprocess.run(["git", "clone", "-q", str(origin), str(path)], check=True)
    git(path, "config", "user.email", "tester@example.com")
    git(path, "config", "user.name", "tester")
    return path


@pytest.fixture
def origin(tmp_path: Path) -> Path:
    """A bare repository with one commit on main, as GitHub would hold."""
    seed = tmp_path / "seed"
    seed.mkdir()
    git(seed, "init", "-q", "-b", "main")
    (seed / "README.md").write_text("project\n")
    git(seed, "add", "README.md")
    git(seed, "-c", "user.email=t@e.com", "-c", "user.name=t", "commit", "-q", "-m", "start")
    bare = tmp_path / "origin.git"
    subprocess.run(["git", "clone", "-q", "--bare", str(seed), str(bare)], check=True)
    return bare


def state_of(clone: Path) -> StateBranch:
    return StateBranch(clone, clone / ".delivery", BRANCH, "origin")


def add_evidence(clone: Path, evidence_id: str, result: str = "passed") -> None:
    folder = clone / ".delivery" / "evidence"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{evidence_id}.json").write_text(json.dumps({"id": evidence_id, "result": result}))


def append_ledger(clone: Path, environment: str, *entries: str) -> None:
    folder = clone / ".delivery" / "ledger"
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / f"{environment}.jsonl", "a") as handle:
        for entry in entries:
            handle.write(json.dumps({"entry": entry}) + "\n")


def branch_paths(repository: Path, ref: str) -> list[str]:
    return git(repository, "ls-tree", "-r", "--name-only", ref).splitlines()


def test_merge_is_a_union_of_append_only_files():
    ledger_old = b'{"n": 1}\n'
    ledger_new = b'{"n": 1}\n{"n": 2}\n'
    merged = merge(
        {"evidence/a.json": b"A", "ledger/test.jsonl": ledger_new},
        {"evidence/a.json": b"A", "evidence/b.json": b"B", "ledger/test.jsonl": ledger_old},
    )
    assert merged == {
        "evidence/a.json": b"A",
        "evidence/b.json": b"B",
        "ledger/test.jsonl": ledger_new,
    }
    assert merge({"ledger/test.jsonl": ledger_old}, {"ledger/test.jsonl": ledger_new}) == {
        "ledger/test.jsonl": ledger_new
    }


def test_merge_refuses_rewritten_evidence_and_diverged_ledgers():
    with pytest.raises(StateConflictError, match="evidence is never rewritten"):
        merge({"evidence/a.json": b"passed"}, {"evidence/a.json": b"failed"})
    with pytest.raises(StateConflictError, match=r"ledger/prod\.jsonl has diverged"):
        merge({"ledger/prod.jsonl": b"1\n2\n"}, {"ledger/prod.jsonl": b"1\n3\n"})


def test_save_commits_state_without_touching_the_checkout(origin, tmp_path):
    clone = make_clone(origin, tmp_path / "clone")
    head_before = git(clone, "rev-parse", "HEAD")
    add_evidence(clone, RECORD_A)
    append_ledger(clone, "test", "promote")
    (clone / ".delivery" / "evidence" / "reports").mkdir()
    (clone / ".delivery" / "evidence" / "notes.json").write_text("{}")  # not a record

    commit = state_of(clone).save("first")

    assert commit == git(clone, "rev-parse", BRANCH)
    assert branch_paths(clone, BRANCH) == [f"evidence/{RECORD_A}.json", "ledger/test.jsonl"]
    assert git(clone, "rev-parse", "HEAD") == head_before
    assert git(clone, "branch", "--show-current") == "main"
    assert git(clone, "status", "--porcelain") == "?? .delivery/"
    assert state_of(clone).save("again") is None  # nothing new


def test_push_then_pull_carries_evidence_to_another_clone(origin, tmp_path):
    first = make_clone(origin, tmp_path / "first")
    second = make_clone(origin, tmp_path / "second")
    assert "nothing to pull" in state_of(second).pull()
    add_evidence(first, RECORD_A)
    append_ledger(first, "test", "promote 1")

    assert "pushed 2 files" in state_of(first).push("from first")
    state_of(second).pull()

    record = second / ".delivery" / "evidence" / f"{RECORD_A}.json"
    assert json.loads(record.read_text())["id"] == RECORD_A
    assert (second / ".delivery/ledger/test.jsonl").read_text().count("\n") == 1
    assert "up to date" in state_of(first).push("again")


def test_push_merges_what_another_run_pushed_meanwhile(origin, tmp_path):
    first = make_clone(origin, tmp_path / "first")
    second = make_clone(origin, tmp_path / "second")
    add_evidence(first, RECORD_A)
    append_ledger(first, "test", "promote 1")
    state_of(first).push("test promotion")
    # The second run started before the first pushed, and committed its state locally.
    add_evidence(second, RECORD_B)
    append_ledger(second, "stage", "promote 1")
    saved = state_of(second).save("stage promotion")

    state_of(second).push("stage promotion")

    pushed = f"refs/heads/{BRANCH}"
    assert sorted(branch_paths(origin, pushed)) == [
        f"evidence/{RECORD_A}.json",
        f"evidence/{RECORD_B}.json",
        "ledger/stage.jsonl",
        "ledger/test.jsonl",
    ]
    parents = git(origin, "log", "-1", "--format=%P", pushed).split()
    first_push = git(first, "rev-parse", BRANCH)
    assert sorted(parents) == sorted([saved, first_push])  # a merge: no history is lost
    assert (second / ".delivery/ledger/test.jsonl").exists()


def test_a_diverged_ledger_is_refused_and_nothing_is_pushed(origin, tmp_path):
    first = make_clone(origin, tmp_path / "first")
    second = make_clone(origin, tmp_path / "second")
    append_ledger(first, "prod", "release 1")
    state_of(first).push("first")
    pushed = git(origin, "rev-parse", f"refs/heads/{BRANCH}")
    append_ledger(second, "prod", "another release 1")
    local_before = (second / ".delivery/ledger/prod.jsonl").read_bytes()

    with pytest.raises(StateConflictError, match="diverged"):
        state_of(second).push("second")

    assert git(origin, "rev-parse", f"refs/heads/{BRANCH}") == pushed
    assert (second / ".delivery/ledger/prod.jsonl").read_bytes() == local_before


def test_an_unreachable_remote_is_a_clear_error(tmp_path, origin):
    clone = make_clone(origin, tmp_path / "clone")
    git(clone, "remote", "set-url", "origin", str(tmp_path / "missing.git"))
    add_evidence(clone, RECORD_A)
    with pytest.raises(ReleaseError, match="git fetch origin failed"):
        state_of(clone).push("x")


@pytest.mark.parametrize("branch", ["main", "feature"])
def test_a_branch_that_holds_code_is_never_the_state_branch(tmp_path, origin, branch):
    clone = make_clone(origin, tmp_path / "clone")
    git(clone, "checkout", "-q", "-b", "feature")
    add_evidence(clone, RECORD_A)
    before = {ref: git(clone, "rev-parse", ref) for ref in ("main", "feature")}
    state = StateBranch(clone, clone / ".delivery", branch, "origin")
    for operation in (lambda: state.save("x"), state.pull, lambda: state.push("x")):
        with pytest.raises(ReleaseError, match=f"state_branch '{branch}' holds this repository"):
            operation()
    assert {ref: git(clone, "rev-parse", ref) for ref in ("main", "feature")} == before


def test_what_the_branch_holds_and_the_state_lost_is_named_then_restored(origin, tmp_path):
    clone = make_clone(origin, tmp_path / "clone")
    add_evidence(clone, RECORD_A, "failed")
    append_ledger(clone, "stage", "deploying", "failed")
    state = state_of(clone)
    state.save("signed")
    state.check_intact()
    (clone / ".delivery" / "evidence" / f"{RECORD_A}.json").unlink()
    ledger = clone / ".delivery" / "ledger" / "stage.jsonl"
    ledger.write_text(ledger.read_text().splitlines(keepends=True)[0])
    assert state.lost() == [f"evidence/{RECORD_A}.json (removed)",
                            "ledger/stage.jsonl (cut or rewritten)"]  # fmt: skip
    with pytest.raises(StateTamperedError, match="sentiment state restore"):
        state.check_intact()
    state.restore()
    assert state.lost() == []
    assert '"failed"' in (clone / ".delivery" / "evidence" / f"{RECORD_A}.json").read_text()


def rewrite_remote(origin: Path, tmp_path: Path, change) -> None:
    """Someone with push rights commits `change` to the state branch."""
    other = make_clone(origin, tmp_path / "rewriter")
    git(other, "checkout", "-q", BRANCH)
    change(other)
    if git(other, "status", "--porcelain"):
        git(other, "commit", "-q", "-am", "tidy up")
    git(other, "push", "-q", "--force", "origin", BRANCH)


@pytest.mark.parametrize(
    ("change", "refusal"),
    [
        (lambda c: git(c, "rm", "-q", f"evidence/{RECORD_A}.json"), "removes evidence/"),
        (lambda c: (c / "ledger" / "stage.jsonl").write_text('{"entry": "other"}\n'),
         "rewrites ledger/stage.jsonl"),
        (lambda c: git(c, "reset", "-q", "--hard", "HEAD~1"), "was rewritten"),
    ],
    ids=["removed", "ledger rewritten", "force-pushed"],
)  # fmt: skip
def test_a_pull_refuses_a_branch_whose_history_did_more_than_add(origin, tmp_path, change, refusal):
    clone = make_clone(origin, tmp_path / "clone")
    add_evidence(clone, RECORD_A, "failed")
    append_ledger(clone, "stage", "deploying", "failed")
    state_of(clone).push("first")
    add_evidence(clone, RECORD_B)
    state_of(clone).push("second")
    rewrite_remote(origin, tmp_path, change)
    with pytest.raises(StateTamperedError, match=refusal):
        state_of(clone).pull()
    assert (clone / ".delivery" / "evidence" / f"{RECORD_A}.json").exists()


def test_a_fresh_state_directory_is_not_held_to_the_branch(origin, tmp_path):
    """Another state directory of the same checkout (an act job's, say) starts empty: it
    is not a pruned one, and its first save brings the branch's files in."""
    clone = make_clone(origin, tmp_path / "clone")
    add_evidence(clone, RECORD_A, "failed")
    state_of(clone).save("signed")
    fresh = StateBranch(clone, tmp_path / "fresh", BRANCH, "origin")
    fresh.check_intact()
    fresh.save("first")
    assert (tmp_path / "fresh" / "evidence" / f"{RECORD_A}.json").exists()
    (tmp_path / "fresh" / "ledger").mkdir()
    (tmp_path / "fresh" / "ledger" / "stage.jsonl").write_text('{"entry": "x"}\n')
    (tmp_path / "fresh" / "evidence" / f"{RECORD_A}.json").unlink()
    with pytest.raises(StateTamperedError, match="removed"):
        fresh.check_intact()
