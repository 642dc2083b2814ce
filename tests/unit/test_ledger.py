"""The ledger: numbering, the release stack, the rollback target, damage, the lock."""

import subprocess
import sys
import time

import pytest

from promotion.ledger import Ledger, PromotionBusyError
from support.clock import utc_now
from support.records import RecordError


@pytest.fixture
def ledger(tmp_path) -> Ledger:
    return Ledger(tmp_path / "ledger")


def add(ledger, event, digest, result="released", environment="prod"):
    return ledger.append(
        event=event, environment=environment, digest=digest, result=result,
        image=f"r/n@{digest}", model=None, evidence=None, actor="tester", at=utc_now(),
    )  # fmt: skip


def digests(ledger, environment="prod"):
    return [entry.digest for entry in ledger.releases(environment)]


def test_entries_are_numbered_typed_and_kept_per_environment(ledger):
    assert add(ledger, "promote", "a").sequence == 1
    assert add(ledger, "promote", "b").sequence == 2
    assert add(ledger, "promote", "x", environment="test").sequence == 1
    assert [e.digest for e in ledger.entries("prod")] == ["a", "b"]
    first = ledger.entries("prod")[0]
    assert (first.event, first.image, first.actor, first.released) == (
        "promote", "r/n@a", "tester", True,
    )  # fmt: skip
    assert '"schema_version": 1' in ledger.path("prod").read_text().splitlines()[0]


def test_releases_stack_and_rollbacks_walk_back(ledger):
    for digest in "abc":
        add(ledger, "promote", digest)
    assert digests(ledger) == ["a", "b", "c"]
    assert ledger.rollback_target("prod").digest == "b"
    add(ledger, "rollback", "b")
    assert digests(ledger) == ["a", "b"]
    # A second rollback goes further back, never forward to the release rolled back from.
    assert ledger.rollback_target("prod").digest == "a"
    add(ledger, "rollback", "a")
    assert ledger.rollback_target("prod") is None


def test_a_failed_promotion_is_not_a_release(ledger):
    add(ledger, "promote", "a")
    add(ledger, "promote", "b", result="failed")
    assert digests(ledger) == ["a"]
    # The failed image still runs (test, stage): rolling back restores the last release.
    assert ledger.rollback_target("prod").digest == "a"


def test_promoting_the_running_release_again_is_not_a_new_release(ledger):
    add(ledger, "promote", "a")
    add(ledger, "promote", "b")
    add(ledger, "promote", "b")
    assert digests(ledger) == ["a", "b"]
    assert ledger.rollback_target("prod").digest == "a"


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("{not json", "prod.jsonl line 2 is damaged: not JSON"),
        ('{"event": "promote"}', "prod.jsonl line 2 is not a valid LedgerEntry: sequence"),
        ('{"schema_version": 2}', "prod.jsonl line 2 has schema version 2"),
    ],
)
def test_a_damaged_line_is_reported_with_its_file_and_line(ledger, line, message):
    add(ledger, "promote", "a")
    with ledger.path("prod").open("a") as handle:
        handle.write(line + "\n")
    with pytest.raises(RecordError, match=message):
        ledger.entries("prod")


def test_a_second_holder_of_the_lock_waits_then_gives_up(ledger, tmp_path):
    ledger.root.mkdir(parents=True)
    holder = subprocess.Popen(
        [
            sys.executable, "-c",
            "import sys, time; from filelock import FileLock; "
            f"lock = FileLock({str(ledger.root / 'prod.lock')!r}); lock.acquire(); "
            "print('held', flush=True); time.sleep(30)",
        ],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "held"
        started = time.monotonic()
        with (
            pytest.raises(PromotionBusyError, match="Nothing was changed"),
            ledger.locked("prod", timeout=0.5),
        ):
            pass
        assert time.monotonic() - started >= 0.5
        # Another environment is not blocked.
        with ledger.locked("stage", timeout=0.5):
            pass
    finally:
        holder.kill()
        holder.wait()
    with ledger.locked("prod", timeout=5):
        pass
