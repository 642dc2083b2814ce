"""Feedback as training data: the reviews whose true label a client gave (and whose text
is known: kept where config allows it, or sent with the feedback), written in the UCI
files' format so training reads and fingerprints them like those (dataset.feedback_files)."""

import hashlib
import json
from pathlib import Path

from sentiment.files import atomic_write
from sentiment.serving.outcomes import STORE_FILE, OutcomeStore
from sentiment_release.support.errors import ReleaseError


def export_feedback(directory: Path, out: Path) -> dict:
    """Writes `sentence<TAB>label` lines (whitespace runs, tabs and line breaks included,
    become one space), once per sentence: a sentence given both labels is left out. Beside
    it, OUT.provenance.jsonl says who gave each line (key id, request id, item, sha256),
    for the review this data needs before it trains anything. The file's fingerprint."""
    if not (directory / STORE_FILE).is_file():
        raise ReleaseError(f"{directory} holds no outcome store ({STORE_FILE})")
    store = OutcomeStore(directory, 1, 1)  # read only: nothing is added, nothing pruned
    try:
        reviews = store.labelled_reviews()
    finally:
        store.close()
    labels: dict[str, set[int]] = {}
    sources: dict[str, list[dict]] = {}
    for review, label, key_id, request_id, item, digest in reviews:
        sentence = " ".join(review.split())
        if sentence:
            labels.setdefault(sentence, set()).add(label)
            sources.setdefault(sentence, []).append({
                "key_id": key_id or None, "request_id": request_id, "item": item,
                "input_sha256": digest, "label": label,
            })  # fmt: skip
    kept = [(sentence, found.pop()) for sentence, found in labels.items() if len(found) == 1]
    data = "".join(f"{sentence}\t{label}\n" for sentence, label in kept).encode("utf-8")
    provenance = "".join(
        json.dumps({"line": number, "given_by": sources[sentence]}) + "\n"
        for number, (sentence, _) in enumerate(kept, start=1)
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(out, data)
    atomic_write(out.with_name(out.name + ".provenance.jsonl"), provenance.encode())
    return {"sha256": hashlib.sha256(data).hexdigest(), "rows": len(kept),
            "conflicting": sum(1 for found in labels.values() if len(found) != 1)}  # fmt: skip
