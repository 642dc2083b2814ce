"""Feedback as training data: the reviews whose true label a client gave (and whose text
is known: kept where config allows it, or sent with the feedback), written in the UCI
files' format so training reads and fingerprints them like those (dataset.feedback_files)."""

import hashlib
from pathlib import Path

from service.outcomes import STORE_FILE, OutcomeStore
from support.errors import ReleaseError
from support.files import atomic_write


def export_feedback(directory: Path, out: Path) -> dict:
    """Writes `sentence<TAB>label` lines (tabs and line breaks in a review become spaces);
    the file's fingerprint (sha256, rows)."""
    if not (directory / STORE_FILE).is_file():
        raise ReleaseError(f"{directory} holds no outcome store ({STORE_FILE})")
    store = OutcomeStore(directory, keep=1)  # read only: nothing is added, nothing pruned
    try:
        reviews = store.labelled_reviews()
    finally:
        store.close()
    lines = []
    for review, label in reviews:
        sentence = " ".join(review.split())  # any whitespace run, "\\t" and "\\n" included
        if sentence:
            lines.append(f"{sentence}\t{label}\n")
    data = "".join(lines).encode("utf-8")
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(out, data)
    return {"sha256": hashlib.sha256(data).hexdigest(), "rows": len(lines)}
