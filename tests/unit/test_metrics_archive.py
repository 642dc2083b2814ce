"""A dead worker's sample files are added into the archive and removed; a flood of scrapes
holding the lock only delays that, it never stalls the gunicorn master."""

import fcntl

import pytest
from prometheus_client.mmap_dict import MmapedDict

from sentiment.serving import metrics

KEY = '["sentiment_predictions", "sentiment_predictions_total", {"label": "negative"}, "h"]'


def write(path, value: float) -> None:
    handle = MmapedDict(str(path))
    handle.write_value(KEY, value, 0.0)
    handle.close()


def read(path) -> float:
    return {key: value for key, value, _, _ in MmapedDict.read_all_values_from_file(str(path))}[KEY]


def test_dead_workers_are_summed_into_the_archive_and_removed(tmp_path):
    write(tmp_path / "counter_101.db", 3)
    write(tmp_path / "counter_102.db", 4)
    metrics.archive_dead_worker(tmp_path, 101)
    metrics.archive_dead_worker(tmp_path, 102)
    metrics.archive_dead_worker(tmp_path, 103)  # nothing of its own: nothing happens
    assert sorted(p.name for p in tmp_path.glob("*.db")) == ["counter_archive.db"]
    assert read(tmp_path / "counter_archive.db") == 7


def test_a_busy_lock_delays_archiving_and_loses_nothing(tmp_path, monkeypatch):
    monkeypatch.setattr(metrics, "ARCHIVE_WAIT_SECONDS", 0.05)
    write(tmp_path / "counter_101.db", 3)
    with open(tmp_path / metrics.LOCK_FILE, "a") as scrape:
        fcntl.flock(scrape, fcntl.LOCK_SH)
        with pytest.raises(TimeoutError, match="stayed locked"):
            metrics.archive_dead_worker(tmp_path, 101)
    assert read(tmp_path / "counter_101.db") == 3  # still there, still summed by scrapes
    metrics.archive_dead_worker(tmp_path, 101)
    assert read(tmp_path / "counter_archive.db") == 3
