from pathlib import Path

import pytest

from sentiment_release.training.dataset import SOURCE_FILES, DatasetError, load_dataset, parse_lines
from tests.conftest import FIXTURE_DATA


def write_sources(directory: Path, **texts: str) -> Path:
    for source, name in SOURCE_FILES.items():
        (directory / name).write_text(texts.get(source, "fine\t1\nbad\t0\n"), encoding="utf-8")
    return directory


def test_parses_sentence_tab_label_and_strips_whitespace():
    rows, bad = parse_lines("  Great food.  \t1\nAwful.\t 0 \n", "f.txt")
    assert rows == [("Great food.", 1), ("Awful.", 0)]
    assert bad == []


def test_u0085_stays_inside_the_sentence():
    rows, bad = parse_lines("A great story\u0085 beautifully told.\t1\n", "imdb_labelled.txt")
    assert rows == [("A great story\u0085 beautifully told.", 1)]
    assert bad == []


def test_blank_lines_and_trailing_newline_are_not_rows():
    rows, bad = parse_lines("a\t1\n\n   \nb\t0\n", "f.txt")
    assert [label for _, label in rows] == [1, 0]
    assert bad == []


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("no tab here 1", "no tab"),
        ("sentence\t2", "is not 0 or 1"),
        ("sentence\tpositive", "is not 0 or 1"),
        ("   \t1", "empty sentence"),
    ],
)
def test_malformed_lines_are_reported_with_file_and_line(line, reason):
    rows, bad = parse_lines(f"ok\t1\n{line}\n", "yelp_labelled.txt")
    assert rows == [("ok", 1)]
    assert len(bad) == 1
    assert str(bad[0]).startswith("yelp_labelled.txt:2: ")
    assert reason in str(bad[0])


def test_a_malformed_line_fails_the_load(tmp_path):
    write_sources(tmp_path, amazon="ok\t1\nbroken line\nalso ok\t0\n")
    with pytest.raises(DatasetError, match=r"amazon_cells_labelled.txt:2: no tab"):
        load_dataset(tmp_path, ["yelp", "amazon"])


def test_skipping_bad_lines_counts_them(tmp_path):
    write_sources(tmp_path, imdb="ok\t1\nbroken\nlabel\t7\nfine\t0\n")
    dataset = load_dataset(tmp_path, ["imdb"], skip_bad_lines=True)
    assert dataset.texts == ["ok", "fine"]
    assert dataset.labels == [1, 0]
    assert [b.line_number for b in dataset.bad_lines] == [2, 3]
    assert dataset.fingerprint()["skipped_lines"] == 2
    assert dataset.files[0].skipped == 2


def test_non_utf8_bytes_name_the_line(tmp_path):
    write_sources(tmp_path)
    (tmp_path / "yelp_labelled.txt").write_bytes(b"ok\t1\nbad \xff byte\t0\n")
    with pytest.raises(DatasetError, match=r"yelp_labelled.txt:2: not valid UTF-8"):
        load_dataset(tmp_path, ["yelp"])


def test_missing_file_is_named(tmp_path):
    with pytest.raises(DatasetError, match=r"yelp_labelled\.txt does not exist"):
        load_dataset(tmp_path, ["yelp"])


def test_loads_only_the_configured_sources():
    yelp_only = load_dataset(FIXTURE_DATA, ["yelp"])
    everything = load_dataset(FIXTURE_DATA, ["yelp", "amazon", "imdb"])
    assert len(yelp_only.texts) == 24
    assert len(everything.texts) == 72
    assert [f.source for f in everything.files] == ["yelp", "amazon", "imdb"]
    assert sum(everything.labels) == 36


def test_fingerprint_follows_file_content(tmp_path):
    write_sources(tmp_path)
    before = load_dataset(tmp_path, ["yelp", "amazon"]).fingerprint()
    assert before == load_dataset(tmp_path, ["yelp", "amazon"]).fingerprint()
    (tmp_path / "amazon_cells_labelled.txt").write_text("fine\t1\nbad\t1\n", encoding="utf-8")
    after = load_dataset(tmp_path, ["yelp", "amazon"]).fingerprint()
    assert after["sha256"] != before["sha256"]
    assert after["files"][0] == before["files"][0]
    assert after["rows"] == 4
