"""Which evidence a promotion needs. Pure rules: they read, decide, and never change anything.

    the environment after the first   needs a passing gate of the first for the image's
                                      source tree and model (no image existed then)
    every later environment           needs a passing gate of the one before, for the digest
    one that requires a release tag   also needs a release tag on the image's commit

"Passing" means the newest record of that gate for that subject passed: a later failure
of the same gate withdraws an earlier pass. Only records whose signature verifies against
config/trust.yaml count; a refusal names the ones it set aside, and why. Nothing is
promoted or rolled back on a ledger its signed evidence contradicts (check_ledger).
"""

from collections.abc import Callable
from fnmatch import fnmatchcase
from typing import Protocol

from sentiment_release.delivery.references import PINNED
from sentiment_release.gates.checks import Baseline
from sentiment_release.gates.evidence import ROLLBACK_GATE, EvidenceError, EvidenceRecord
from sentiment_release.gates.evidence_store import EvidenceStore, ignored
from sentiment_release.gates.subject import Subject
from sentiment_release.promotion.ledger import DEPLOYING, Ledger, LedgerEntry, LedgerTamperedError
from sentiment_release.promotion.policy import Policy
from sentiment_release.support.errors import ReleaseError
from sentiment_release.support.git import TAG_NAME


class PromotionRefusedError(ReleaseError):
    """The promotion may not happen; nothing was changed."""


class ReleaseTags(Protocol):
    def release_tags(self, commit: str, pattern: str) -> list[str]: ...

    def is_ancestor(self, older: str, newer: str) -> bool: ...

    def tag_commit(self, tag: str) -> str | None: ...

    def is_on_branch(self, commit: str, branch: str, remote: str) -> bool: ...


def required_evidence(
    policy: Policy, target: str, subject: Subject, store: EvidenceStore
) -> EvidenceRecord:
    """The evidence record `target` relies on, or PromotionRefusedError saying what is missing."""
    below = policy.previous(target)
    if below is None:
        raise PromotionRefusedError(
            f"{target} is not promoted to: its gate runs before an image exists "
            f"(`sentiment gate {target}`), and `sentiment deploy {target}` runs any build there"
        )
    if below is policy.first:
        record = store.latest(
            below.name, source_tree=subject.source_tree, model_sha256=subject.model_sha256
        )
        what = f"source tree {subject.source_tree[:12]} with model {subject.model_sha256[:12]}"
        how = f"run `sentiment gate {below.name}` on that tree, then build again"
    else:
        record = store.latest(below.name, digest=subject.digest)
        what = f"image {subject.digest}"
        how = (
            f"promote it to {below.name} first (sentiment promote --to {below.name} --image DIGEST)"
        )
    if record is None:
        raise PromotionRefusedError(
            f"refusing to promote to {target}: no {below.name} gate evidence for {what}; {how}"
            + ignored(store.rejected(below.name))
        )
    if not record.passed:
        reasons = "; ".join(record.failures[:3]) or "see the record"
        raise PromotionRefusedError(
            f"refusing to promote to {target}: the latest {below.name} gate for {what} failed "
            f"(evidence {record.id}): {reasons}" + ignored(store.rejected(below.name))
        )
    return record


def not_older_than_the_release(
    target: str, subject: Subject, ledger: Ledger, history: ReleaseTags
) -> None:
    """An image of an older commit never replaces the release of a newer one: promotion
    only moves forward (a queued run of an earlier merge finishing late, say); `rollback`
    is the way back. Another build of the same commit, or of a commit on another line of
    history, may follow."""
    releases = ledger.releases(target)
    current = releases[-1] if releases else None
    if current is None or current.git_commit is None:
        return
    if _precedes(subject.git_commit, current.git_commit, history):
        raise PromotionRefusedError(
            f"refusing to promote to {target}: image {subject.digest} is of commit "
            f"{_bare(subject.git_commit)[:12]}, older than {_bare(current.git_commit)[:12]}, "
            f"whose image {current.digest} is {target}'s release (ledger #{current.sequence}); "
            f"promotions only move forward: `sentiment rollback {target}` goes back"
        )


def superseded(
    target: str, subject: Subject, running: Subject | None, ledger: Ledger, history: ReleaseTags
) -> str | None:
    """Why `subject` has been superseded in `target`, or None: an image of a newer commit
    already runs there (`running`) or is its release. A run of an earlier merge that comes
    late then stops there, and says so, instead of failing or moving `target` back."""
    releases = ledger.releases(target)
    found = [("runs", running.git_commit, running.digest)] if running else []
    if releases and releases[-1].git_commit:
        found.append(("has as its release", releases[-1].git_commit, releases[-1].digest))
    for what, commit, digest in found:
        if _precedes(subject.git_commit, commit, history):
            return (
                f"{target} already {what} image {digest} of commit {_bare(commit)[:12]}, which "
                f"follows {_bare(subject.git_commit)[:12]} (image {subject.digest}) on the "
                "branch: that newer commit goes on instead"
            )
    return None


def _bare(commit: str) -> str:
    return commit.removesuffix("-dirty")


def _precedes(older: str, newer: str, history: ReleaseTags) -> bool:
    """`older` comes before `newer` in history (another build of one commit does not)."""
    return _bare(older) != _bare(newer) and history.is_ancestor(_bare(older), _bare(newer))


def release_tag(
    policy: Policy, target: str, subject: Subject, given: str | None, tags: ReleaseTags
) -> str:
    """The release tag `target` requires: `given` (checked) or the highest one on the
    commit, which must be on the release branch."""
    refused = f"refusing to promote to {target}"
    pattern, branch = policy.release_tag_pattern, policy.release_branch
    if not subject.committed:
        raise PromotionRefusedError(
            f"{refused}: image {subject.digest} was built from uncommitted changes; "
            "commit, tag, build and promote again"
        )
    commit = subject.git_commit
    if not tags.is_on_branch(commit, branch, policy.state_remote):
        raise PromotionRefusedError(
            f"{refused}: commit {commit[:12]} is not on {branch}; releases come from {branch} "
            f"(config/promotion.yaml release_branch): merge it, then tag"
        )
    if given is not None:
        if not fnmatchcase(given, pattern) or not TAG_NAME.fullmatch(given):
            raise PromotionRefusedError(
                f"{refused}: {given!r} is not a release tag "
                f"(release tags match {pattern!r}, config/promotion.yaml)"
            )
        tagged = tags.tag_commit(given)
        if tagged is None:
            raise PromotionRefusedError(f"{refused}: there is no tag {given!r}")
        if tagged != commit:
            raise PromotionRefusedError(
                f"{refused}: tag {given} points at {tagged[:12]}, "
                f"but the image was built from {commit[:12]}"
            )
        return given
    found = tags.release_tags(commit, pattern)
    if not found:
        raise PromotionRefusedError(
            f"{refused}: commit {commit[:12]} has no release tag matching "
            f"{pattern!r}; tag it (git tag vX.Y.Z {commit[:12]}) or pass --release-tag"
        )
    return found[0]


def release_candidate(
    policy: Policy, commit: str, tag: str, store: EvidenceStore
) -> EvidenceRecord:
    """The newest record of the gate before the release environment that passed for an
    image of `commit`, whose pass no later record withdrew: the image `tag` ships."""
    gate = policy.previous(policy.release_environment().name)
    assert gate is not None  # the first environment never requires a release tag
    latest_per_image: dict[str, EvidenceRecord] = {}
    for record in store.records(gate.name):
        if record.subject.git_commit == commit and record.subject.digest:
            latest_per_image[record.subject.digest] = record
    passed = [record for record in latest_per_image.values() if record.passed]
    if not passed:
        failed = f" ({len(latest_per_image)} image(s) failed it)" if latest_per_image else ""
        raise PromotionRefusedError(
            f"refusing to release {tag}: no image of commit {commit[:12]} has passed the "
            f"{gate.name} gate{failed}; merge it to main so the pipeline builds and promotes "
            "it, then tag again" + ignored(store.rejected(gate.name))
        )
    return max(passed, key=lambda record: record.id)


class RollbackRefusedError(PromotionRefusedError):
    """There is nothing a rollback may put back; what runs stays."""


def rollback_image(
    environment: str, target: LedgerEntry | None, store: EvidenceStore, repository: str
) -> str:
    """The image a rollback of `environment` puts back: `target`'s (the ledger's rollback
    target). RollbackRefusedError when there is none, or it is not vouched for."""
    refused = f"refusing to roll {environment} back"
    if target is None or target.image is None:
        raise RollbackRefusedError(
            f"{refused}: it has no earlier release (see `sentiment history {environment}`); "
            "what runs stays"
        )
    return vouched_image(environment, target, store, repository, refused, "; what runs stays")


def vouched_image(
    environment: str,
    entry: LedgerEntry,
    store: EvidenceStore,
    repository: str,
    refused: str,
    consequence: str = "",
) -> str:
    """`entry`'s image, if it is an image of the configured repository that a passing gate
    of `environment` vouched for (RollbackRefusedError, "`refused`: why`consequence`",
    otherwise): a ledger line alone never names an image to act on."""
    match = PINNED.fullmatch(entry.image or "")
    if match is None or match["name"] != repository or match["digest"] != entry.digest:
        raise RollbackRefusedError(
            f"{refused}: ledger entry #{entry.sequence} names {entry.image}, not an image of "
            f"{repository} (config/delivery.yaml registry){consequence}"
        )
    why = ""
    try:
        record = store.get(entry.evidence, gate_of(entry), environment) if entry.evidence else None
    except ReleaseError as error:
        record, why = None, f": {error}"
    vouches = record is not None and record.passed and record.subject.digest == entry.digest
    if not vouches:
        raise RollbackRefusedError(
            f"{refused}: no passing {environment} gate vouches for {entry.digest} (ledger "
            f"entry #{entry.sequence} relies on evidence {entry.evidence}{why}){consequence}"
        )
    return match.string


# What an outcome entry says of its own; the rest repeats its "deploying" entry, which the
# gate's signed record anchors by hash.
OUTCOME_OWN = {"sequence", "previous", "result", "evidence", "at"}


def check_ledger_below(policy: Policy, target: str, ledger: Ledger, store: EvidenceStore) -> None:
    """LedgerTamperedError unless the ledger of the environment `target` takes images from
    holds (where it has one: the first environment is deployed, never promoted to). It
    names every gate it ran, failures too, so a failure spoilt or removed stops every
    promotion from it (check_chain)."""
    below = policy.previous(target)
    if below is not None and below is not policy.first:
        check_ledger(below.name, ledger, store)


def gate_of(entry: LedgerEntry) -> str:
    """The gate whose record a ledger entry's event produced: the environment's own after
    a promotion, the rollback gate (run in that environment) after a rollback."""
    return entry.environment if entry.event == "promote" else ROLLBACK_GATE


def check_ledger(environment: str, ledger: Ledger, store: EvidenceStore) -> None:
    """LedgerTamperedError unless `environment`'s ledger is the one its signed gates
    followed (check_chain, on its signed entries and verified evidence)."""
    check_chain(
        environment, ledger.chain(environment), f"{environment}'s ledger "
        f"({ledger.path(environment)})", store.get, store.records(environment=environment),
    )  # fmt: skip


RecordOf = Callable[[str, str, str], EvidenceRecord]


def check_chain(
    environment: str,
    chain: list[tuple[LedgerEntry, str]],
    where: str,
    record_of: RecordOf,
    records: list[EvidenceRecord],
) -> None:
    """LedgerTamperedError unless `chain` (entries with their hashes) is the ledger the
    gates followed: every outcome the one its evidence recorded right after that deploy's
    entry; every record an entry names (what it relied on, what it produced) there and
    vouching for it; and every entry one of `records` (the gates run in `environment`)
    followed still there, so a cut or rewritten ledger loses it. `record_of(id, gate,
    environment)` is how a named record is read (verified)."""
    for index, (entry, _) in enumerate(chain):
        _check_relied_on(entry, where, record_of)
        if entry.result == DEPLOYING:
            continue  # an outcome follows, or the deploy was interrupted
        before = chain[index - 1][0] if index else None
        if before is None or before.result != DEPLOYING or before.digest != entry.digest:
            raise LedgerTamperedError(
                f"{where}: entry #{entry.sequence} records an outcome with no deploy of "
                f"{entry.digest} before it; nothing relies on this ledger"
            )
        deployed, recorded = (e.model_dump(exclude=OUTCOME_OWN) for e in (before, entry))
        if deployed != recorded:
            differ = ", ".join(sorted(k for k in deployed if deployed[k] != recorded[k]))
            raise LedgerTamperedError(
                f"{where}: entry #{entry.sequence} records another deploy than entry "
                f"#{before.sequence}, the one its gate followed ({differ}); nothing relies "
                "on this ledger"
            )
        try:
            record = record_of(entry.evidence or "", gate_of(entry), environment)
        except EvidenceError as error:
            raise LedgerTamperedError(
                f"{where}: entry #{entry.sequence} names evidence that does not count "
                f"({error}); nothing relies on this ledger"
            ) from None
        if (
            record.ledger_head != entry.previous
            or record.subject.digest != entry.digest
            or record.passed != entry.released
        ):
            raise LedgerTamperedError(
                f"{where}: entry #{entry.sequence} ({entry.result}, {entry.digest}) is not "
                f"what evidence {record.id} recorded ({record.result}, "
                f"{record.subject.digest}, after another entry); nothing relies on this ledger"
            )
    hashes = {entry_hash for _, entry_hash in chain}
    for record in records:
        if record.ledger_head not in (None, *hashes):
            raise LedgerTamperedError(
                f"{where} no longer holds the entry that gate evidence {record.id} followed "
                f"(signed {record.finished_at:%Y-%m-%d %H:%M}Z): the ledger was cut or "
                "rewritten; nothing relies on it until it is restored from the state "
                "branch's history"
            )


def _check_relied_on(entry: LedgerEntry, where: str, record_of: RecordOf) -> None:
    """A promotion's entries name the record of the environment below that let the image
    in: it must be there, verify as that gate's, have passed, and be about this image
    (the first environment's gate: about its model)."""
    if entry.event != "promote":
        return
    below = entry.from_environment
    if below is None or not entry.relied_on:
        raise LedgerTamperedError(
            f"{where}: entry #{entry.sequence} is a promotion that names no evidence it "
            "relied on; nothing relies on this ledger"
        )
    for evidence_id in entry.relied_on:
        try:
            record = record_of(evidence_id, below, below)
        except EvidenceError as error:
            raise LedgerTamperedError(
                f"{where}: entry #{entry.sequence} relied on {below} evidence that does not "
                f"count ({error}); nothing relies on this ledger"
            ) from None
        about = record.subject.digest == entry.digest or (
            record.subject.digest is None
            and entry.model is not None
            and record.subject.model_sha256 == entry.model.sha256
        )
        if not record.passed or not about:
            raise LedgerTamperedError(
                f"{where}: entry #{entry.sequence} relied on evidence {record.id}, which "
                f"does not vouch for {entry.digest}; nothing relies on this ledger"
            )


def release_baseline(
    policy: Policy,
    ledger: Ledger,
    store: EvidenceStore,
    repository: str,
    gate: str,
    check: str,
) -> Baseline | None:
    """What the check named `check` of `gate` measured on the image now released in the
    release environment (prod), from that image's newest passing `gate` evidence; None
    when nothing is released or that evidence has no such passed check. The release must
    be one the release environment's verified ledger and gate vouch for (ReleaseError
    otherwise): a forged ledger or record never lowers the bar."""
    environment = policy.release_environment().name
    check_ledger(environment, ledger, store)
    releases = ledger.releases(environment)
    if not releases:
        return None
    current = releases[-1]
    vouched_image(environment, current, store, repository, f"no {check} baseline")
    # The measurement that let the release move on from `gate`: what a promotion of this
    # image relied on, never a later re-run of the same image (a lucky or unlucky one).
    relied = {
        evidence_id
        for name in policy.names
        for entry in ledger.entries(name)
        if entry.released and entry.digest == current.digest
        for evidence_id in entry.relied_on
    }
    records = []
    for evidence_id in sorted(relied):
        try:
            record = store.get(evidence_id, gate)
        except ReleaseError:
            continue
        if record.passed and record.subject.digest == current.digest:
            records.append(record)
    if not records:
        return None
    record = max(records, key=lambda found: found.finished_at)
    found = next((c for c in record.checks if c.name == check and c.result == "passed"), None)
    if found is None:
        return None
    release = current.release_tag or current.digest
    return Baseline(found.figures, record.id, release, found.check, found.options)
