"""Which evidence a promotion needs. Pure rules: they read, decide, and never change anything.

    test   needs a passing dev gate for the image's source tree and model
    stage  needs a passing test gate for the image's digest
    prod   needs a passing stage gate for the image's digest, and a release tag on its commit

"Passing" means the newest record of that gate for that subject passed: a later failure
of the same gate withdraws an earlier pass.
"""

from collections.abc import Callable
from fnmatch import fnmatchcase
from typing import Any

from delivery.errors import DeliveryError
from gates.evidence import EvidenceStore
from gates.subject import Subject

PREVIOUS = {"test": "dev", "stage": "test", "prod": "stage"}


class PromotionRefusedError(DeliveryError):
    """The promotion may not happen; nothing was changed."""


def required_evidence(target: str, subject: Subject, store: EvidenceStore) -> dict[str, Any]:
    """The evidence record `target` relies on, or PromotionRefusedError saying what is missing."""
    if target not in PREVIOUS:
        raise PromotionRefusedError(
            f"{target} is not promoted to: the dev gate runs before an image exists "
            "(`sentiment gate dev`), and `sentiment deploy dev` runs any build there"
        )
    below = PREVIOUS[target]
    if below == "dev":
        record = store.latest(
            "dev", source_tree=subject.source_tree, model_sha256=subject.model_sha256
        )
        what = f"source tree {subject.source_tree[:12]} with model {subject.model_sha256[:12]}"
        how = "run `sentiment gate dev` on that tree, then build again"
    else:
        record = store.latest(below, digest=subject.digest)
        what = f"image {subject.digest}"
        how = f"promote it to {below} first (sentiment promote --to {below} --image DIGEST)"
    if record is None:
        raise PromotionRefusedError(
            f"refusing to promote to {target}: no {below} gate evidence for {what}; {how}"
        )
    if record["result"] != "passed":
        reasons = "; ".join(record["failures"][:3]) or "see the record"
        raise PromotionRefusedError(
            f"refusing to promote to {target}: the latest {below} gate for {what} failed "
            f"(evidence {record['id']}): {reasons}"
        )
    return record


def release_tag(
    subject: Subject,
    given: str | None,
    pattern: str,
    tags_on: Callable[[str], list[str]],
    commit_of: Callable[[str], str | None],
) -> str:
    """The release tag prod requires: `given` (checked) or the highest one on the commit."""
    if not subject.committed:
        raise PromotionRefusedError(
            f"refusing to promote to prod: image {subject.digest} was built from uncommitted "
            "changes; commit, tag, build and promote again"
        )
    commit = subject.git_commit
    if given is not None:
        if not fnmatchcase(given, pattern):
            raise PromotionRefusedError(
                f"refusing to promote to prod: {given!r} is not a release tag "
                f"(release tags match {pattern!r}, config/delivery.yaml promotion)"
            )
        tagged = commit_of(given)
        if tagged is None:
            raise PromotionRefusedError(f"refusing to promote to prod: there is no tag {given!r}")
        if tagged != commit:
            raise PromotionRefusedError(
                f"refusing to promote to prod: tag {given} points at {tagged[:12]}, "
                f"but the image was built from {commit[:12]}"
            )
        return given
    tags = tags_on(commit)
    if not tags:
        raise PromotionRefusedError(
            f"refusing to promote to prod: commit {commit[:12]} has no release tag matching "
            f"{pattern!r}; tag it (git tag vX.Y.Z {commit[:12]}) or pass --release-tag"
        )
    return tags[0]


def release_candidate(commit: str, tag: str, store: EvidenceStore) -> dict[str, Any]:
    """The newest stage record that passed for an image of `commit`, whose pass no later
    stage record withdrew: the image a release of `tag` ships."""
    latest_per_image: dict[str, dict[str, Any]] = {}
    for record in store.records():
        if record["gate"] == "stage" and record["subject"].get("git_commit") == commit:
            latest_per_image[record["subject"]["digest"]] = record
    passed = [r for r in latest_per_image.values() if r["result"] == "passed"]
    if not passed:
        failed = f" ({len(latest_per_image)} image(s) failed it)" if latest_per_image else ""
        raise PromotionRefusedError(
            f"refusing to release {tag}: no image of commit {commit[:12]} has passed the "
            f"stage gate{failed}; merge it to main so the pipeline builds and promotes it, "
            "then tag again"
        )
    return max(passed, key=lambda record: record["id"])
