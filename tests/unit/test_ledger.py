"""The ledger: numbering, the release stack, the rollback target, damage, the lock."""

import hashlib
import json
import subprocess
import sys
import time

import pytest

from sentiment_release.promotion.ledger import (
    PAYLOAD_TYPE,
    Ledger,
    LedgerTamperedError,
    PromotionBusyError,
    canonical,
)
from sentiment_release.support.clock import utc_now
from sentiment_release.support.records import RecordError
from sentiment_release.support.signing import sign_detached
from tests.conftest import make_keyring


@pytest.fixture
def ledger(tmp_path) -> Ledger:
    return Ledger(tmp_path / "ledger", make_keyring(tmp_path / "keys"), tmp_path / "pending")


def digest(name: str) -> str:
    return "sha256:" + name * 64


def add(ledger, event, name, result="released", environment="prod"):
    """An entry as a promotion writes it, then signed as the signing step would."""
    written = ledger.append(
        event=event, environment=environment, digest=digest(name), result=result,
        image=f"r.io/n@{digest(name)}", model=None, evidence=None, actor="tester", at=utc_now(),
    )  # fmt: skip
    assert ledger.entries(environment)[-1:] != [written[0]]  # unsigned: not in the ledger yet
    ledger.seal(environment, [written], ledger.keyring.signer(environment))
    return written[0]


def signed_line(ledger, entry: dict, environment: str = "prod") -> str:
    """A line as the signing step writes it, for an entry written by hand."""
    signer = ledger.keyring.signer(environment)
    return json.dumps(
        {"entry": entry, "signatures": sign_detached(canonical(entry), PAYLOAD_TYPE, signer)}
    )


def digests(ledger, environment="prod"):
    return [entry.digest[-1] for entry in ledger.releases(environment)]


def test_entries_are_numbered_typed_and_kept_per_environment(ledger):
    assert add(ledger, "promote", "a").sequence == 1
    assert add(ledger, "promote", "b").sequence == 2
    assert add(ledger, "promote", "f", environment="test").sequence == 1
    assert [e.digest for e in ledger.entries("prod")] == [digest("a"), digest("b")]
    first = ledger.entries("prod")[0]
    assert (first.event, first.image, first.actor, first.released) == (
        "promote", f"r.io/n@{digest('a')}", "tester", True,
    )  # fmt: skip
    assert '"schema_version":1' in ledger.path("prod").read_text().splitlines()[0]


def test_releases_stack_and_rollbacks_walk_back(ledger):
    for digest in "abc":
        add(ledger, "promote", digest)
    assert digests(ledger) == ["a", "b", "c"]
    assert ledger.rollback_target("prod").digest[-1] == "b"
    add(ledger, "rollback", "b")
    assert digests(ledger) == ["a", "b"]
    # A second rollback goes further back, never forward to the release rolled back from.
    assert ledger.rollback_target("prod").digest[-1] == "a"
    add(ledger, "rollback", "a")
    assert ledger.rollback_target("prod") is None


def test_a_failed_promotion_is_not_a_release(ledger):
    add(ledger, "promote", "a")
    add(ledger, "promote", "b", result="failed")
    assert digests(ledger) == ["a"]
    # The failed image still runs (test, stage): rolling back restores the last release.
    assert ledger.rollback_target("prod").digest[-1] == "a"


def test_promoting_the_running_release_again_is_not_a_new_release(ledger):
    add(ledger, "promote", "a")
    add(ledger, "promote", "b")
    add(ledger, "promote", "b")
    assert digests(ledger) == ["a", "b"]
    assert ledger.rollback_target("prod").digest[-1] == "a"


ENTRY = (
    '{"sequence": 2, "event": "rollback", "environment": "prod", "result": "released", '
    '"digest": null, "image": IMAGE, "model": null, "evidence": null, "actor": "a", '
    '"at": "2026-11-27T00:00:00Z", "previous": "PREVIOUS"}'
)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("{not json", "prod.jsonl line 2 is damaged: not JSON"),
        (
            ENTRY.replace("IMAGE", '"--privileged"'),
            "prod.jsonl line 2 is not a valid LedgerEntry: image",
        ),
        (ENTRY.replace("IMAGE", '"r/n:latest"'), "line 2 is not a valid LedgerEntry: image"),
        ('{"schema_version": true, "sequence": 2}', "prod.jsonl line 2 has schema version True"),
        (
            ENTRY.replace("IMAGE", "null").replace('"prod"', '"stage"'),
            "prod.jsonl holds entry #2 of 'stage'",
        ),
        ('{"event": "promote"}', "prod.jsonl line 2 is not a valid LedgerEntry: sequence"),
        ('{"schema_version": 2}', "prod.jsonl line 2 has schema version 2"),
    ],
)
def test_a_damaged_line_is_reported_with_its_file_and_line(ledger, line, message):
    """Signed with the right key, a damaged entry is still named (a bug of the tooling)."""
    add(ledger, "promote", "a")
    [(_, head)] = ledger.chain("prod")
    line = line.replace("PREVIOUS", head)
    damaged = line.startswith("{not")
    written = line if damaged else signed_line(ledger, json.loads(line))
    with ledger.path("prod").open("a") as handle:
        handle.write(written + "\n")
    with pytest.raises(RecordError, match=message):
        ledger.entries("prod")


def test_each_entry_carries_the_hash_of_the_entry_before(ledger):
    add(ledger, "promote", "a")
    add(ledger, "promote", "b")
    first, second = (
        json.loads(line)["entry"] for line in ledger.path("prod").read_text().splitlines()
    )
    assert first["previous"] is None
    assert second["previous"] == hashlib.sha256(canonical(first)).hexdigest()
    assert next(hash_ for _, hash_ in ledger.chain("prod")) == second["previous"]


def test_an_entry_counts_only_signed_by_a_key_of_its_ledger(ledger):
    """The forged append: a well-formed, well-chained entry nobody with prod's key signed."""
    add(ledger, "promote", "a")
    add(ledger, "promote", "b")
    [_, (entry, head)] = ledger.chain("prod")
    forged = {
        **json.loads(entry.to_json(indent=None)),
        "sequence": 3,
        "previous": head,
        "result": "deploying",
        "digest": digest("f"),
        "image": f"r.io/n@{digest('f')}",
    }
    path = ledger.path("prod")
    kept = path.read_text()
    for line, refusal in [
        (json.dumps(forged), "is not a signed ledger entry"),
        (json.dumps({"entry": forged, "signatures": []}), "it is unsigned"),
        (signed_line(ledger, forged, "stage"), "which config/trust.yaml does not trust for prod"),
    ]:
        path.write_text(kept + line + "\n")
        with pytest.raises(LedgerTamperedError, match=refusal):
            ledger.entries("prod")
    path.write_text(kept + signed_line(ledger, forged) + "\n")
    assert ledger.running("prod") == digest("f")  # prod's own key, and only it, can add one


def rewrite(ledger, change) -> None:
    path = ledger.path("prod")
    lines = path.read_text().splitlines()
    path.write_text("\n".join(change(lines)) + "\n")


def edited(lines):
    """The middle entry's result flipped, as a hand edit would."""
    lines[1] = lines[1].replace('"failed"', '"released"')
    return lines


def reformatted(lines):
    """The same entries, reformatted: what is signed is the entry, not its spacing."""
    return [json.dumps(json.loads(line), indent=2).replace("\n", "") for line in lines]


@pytest.mark.parametrize(
    ("change", "refusal"),
    [
        (edited, "does not verify: the envelope was altered"),
        (lambda lines: [lines[1], lines[0], lines[2]], "does not follow the line before it"),
        (lambda lines: [lines[0], lines[2]], "does not follow the line before it"),
        (lambda lines: lines[1:], "does not follow the line before it"),
    ],
    ids=["edited", "reordered", "middle-cut", "head-cut"],
)
def test_an_edited_reordered_or_cut_ledger_is_refused(ledger, change, refusal):
    add(ledger, "promote", "a")
    add(ledger, "promote", "b", result="failed")
    add(ledger, "promote", "c")
    rewrite(ledger, change)
    with pytest.raises(LedgerTamperedError, match=refusal):
        ledger.entries("prod")


def test_a_reformatted_ledger_is_the_same_ledger(ledger):
    for name in "abc":
        add(ledger, "promote", name)
    before = ledger.chain("prod")
    rewrite(ledger, reformatted)
    assert ledger.chain("prod") == before


def test_a_ledger_from_before_the_chain_is_refused_with_what_to_do(ledger):
    ledger.path("prod").parent.mkdir(parents=True)
    unchained = json.loads(ENTRY.replace("IMAGE", "null"))
    del unchained["previous"]
    ledger.path("prod").write_text(
        json.dumps({**unchained, "sequence": 1, "schema_version": 1}) + "\n"
    )
    with pytest.raises(LedgerTamperedError, match=r"line 1 was written before ledgers were "
                       r"hash-chained .* start a new state branch"):  # fmt: skip
        ledger.entries("prod")


def test_a_ledger_that_is_not_a_file_is_an_error_not_a_traceback(ledger):
    ledger.path("prod").mkdir(parents=True)
    with pytest.raises(RecordError, match=r"prod\.jsonl cannot be read"):
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
