"""Parses the UCI "Sentiment Labelled Sentences" files into texts and labels."""

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

from sentiment_release.support.errors import ReleaseError

SOURCE_FILES = {
    "yelp": "yelp_labelled.txt",
    "amazon": "amazon_cells_labelled.txt",
    "imdb": "imdb_labelled.txt",
}
LABELS = ("0", "1")


class DatasetError(ReleaseError):
    """The data cannot be used for training; the message says where and why."""


@dataclass(frozen=True)
class BadLine:
    file: str
    line_number: int
    reason: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line_number}: {self.reason}"


@dataclass(frozen=True)
class SourceFile:
    """What was read from one file: enough to tell later whether it changed."""

    source: str
    file: str
    sha256: str
    rows: int
    skipped: int


@dataclass(frozen=True)
class Dataset:
    texts: list[str]
    labels: list[int]
    files: list[SourceFile]
    bad_lines: list[BadLine] = field(default_factory=list)

    def fingerprint(self) -> dict:
        """The dataset's identity as recorded in the model bundle."""
        combined = hashlib.sha256()
        for item in self.files:
            combined.update(f"{item.file}:{item.sha256}\n".encode())
        return {
            "sha256": combined.hexdigest(),
            "rows": len(self.texts),
            "skipped_lines": len(self.bad_lines),
            "files": [vars(item) for item in self.files],
        }


def parse_lines(text: str, file: str) -> tuple[list[tuple[str, int]], list[BadLine]]:
    """Rows `sentence<TAB>label` from one file's text, and the lines that are not.

    Lines are split on "\\n" only: imdb_labelled.txt has U+0085 (NEL) inside
    sentences, which str.splitlines() would treat as a line break.
    """
    rows, bad = [], []
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        sentence, tab, label = line.rpartition("\t")
        sentence, label = sentence.strip(), label.strip()
        if not tab:
            bad.append(BadLine(file, number, "no tab between sentence and label"))
        elif label not in LABELS:
            bad.append(BadLine(file, number, f"label {label[:20]!r} is not 0 or 1"))
        elif not sentence:
            bad.append(BadLine(file, number, "empty sentence"))
        else:
            rows.append((sentence, int(label)))
    return rows, bad


def load_dataset(
    directory: Path,
    sources: list[str],
    skip_bad_lines: bool = False,
    extra_files: list[Path] = (),
) -> Dataset:
    """Reads the chosen sources from `directory`, then `extra_files` in the same format
    (exported feedback: source "feedback"); malformed lines fail unless skipped."""
    texts, labels, files, all_bad = [], [], [], []
    chosen = [(source, directory / SOURCE_FILES[source]) for source in sources]
    for source, path in [*chosen, *(("feedback", Path(extra)) for extra in extra_files)]:
        rows, bad, digest = _read_file(path, skip_bad_lines)
        texts.extend(sentence for sentence, _ in rows)
        labels.extend(label for _, label in rows)
        all_bad.extend(bad)
        files.append(SourceFile(source, path.name, digest, len(rows), len(bad)))
    return Dataset(texts, labels, files, all_bad)


def _read_file(path: Path, skip_bad_lines: bool) -> tuple[list[tuple[str, int]], list, str]:
    name = path.name
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise DatasetError(f"{path} does not exist") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        line = raw[: error.start].count(b"\n") + 1
        raise DatasetError(f"{name}:{line}: not valid UTF-8") from None
    rows, bad = parse_lines(text, name)
    if bad and not skip_bad_lines:
        shown = "\n  ".join(str(b) for b in bad[:10])
        more = f"\n  ... and {len(bad) - 10} more" if len(bad) > 10 else ""
        raise DatasetError(
            f"{len(bad)} malformed line(s) in {name} "
            f"(use --skip-bad-lines to skip them):\n  {shown}{more}"
        )
    if not rows:
        raise DatasetError(f"{name} holds no usable rows")
    return rows, bad, hashlib.sha256(raw).hexdigest()
