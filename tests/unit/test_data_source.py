"""The download path, against a zip served from 127.0.0.1 by the test itself."""

import io
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from sentiment_release.training.data_source import fetch, resolve_data_dir
from sentiment_release.training.dataset import SOURCE_FILES, DatasetError
from tests.conftest import FIXTURE_DATA


def uci_zip(files: tuple[str, ...] = tuple(SOURCE_FILES)) -> bytes:
    """A zip shaped like UCI's: the files nested in a folder, plus macOS litter."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name in (SOURCE_FILES.get(f, f) for f in files):
            data = (FIXTURE_DATA / name).read_bytes()
            archive.writestr(f"sentiment labelled sentences/{name}", data)
            archive.writestr(f"__MACOSX/sentiment labelled sentences/._{name}", b"junk")
        archive.writestr("sentiment labelled sentences/readme.txt", b"readme")
    return buffer.getvalue()


@pytest.fixture
def http_server():
    """Serves `routes[path] = (status, body)` on 127.0.0.1 and counts the requests."""
    routes: dict[str, tuple[int, bytes]] = {}
    hits: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            hits.append(self.path)
            status, body = routes.get(self.path, (404, b"not found"))
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield base, routes, hits
    finally:
        server.shutdown()
        server.server_close()


def test_downloads_extracts_and_then_reuses_the_cache(http_server, tmp_path):
    base, routes, hits = http_server
    routes["/uci.zip"] = (200, uci_zip())
    directory = fetch(f"{base}/uci.zip", tmp_path / "cache", timeout=5)
    assert sorted(p.name for p in directory.iterdir()) == sorted(SOURCE_FILES.values())
    for name in SOURCE_FILES.values():
        assert (directory / name).read_bytes() == (FIXTURE_DATA / name).read_bytes()
    again = fetch(f"{base}/uci.zip", tmp_path / "cache", timeout=5)
    assert again == directory
    assert hits == ["/uci.zip"]


@pytest.mark.parametrize(
    ("status", "body", "message"),
    [
        (404, b"gone", "404"),
        (200, b"this is not a zip", "did not return a zip"),
        (200, uci_zip(files=("yelp",)), "lacks amazon_cells_labelled.txt"),
    ],
)
def test_bad_downloads_fail_clearly_and_leave_no_cache(
    http_server, tmp_path, status, body, message
):
    base, routes, _ = http_server
    routes["/uci.zip"] = (status, body)
    with pytest.raises(DatasetError, match=message):
        fetch(f"{base}/uci.zip", tmp_path / "cache", timeout=5)
    assert not (tmp_path / "cache" / "sentiment-labelled-sentences").exists()


def test_offline_error_says_both_ways_to_provide_data(tmp_path):
    # Port 9 on loopback: nothing listens, the connection is refused at once.
    with pytest.raises(DatasetError) as error:
        fetch("http://127.0.0.1:9/uci.zip", tmp_path, timeout=2)
    assert "--data-dir" in str(error.value)
    assert "SENTIMENT_DATA_DIR" in str(error.value)


def test_a_local_directory_wins_and_is_checked(tmp_path):
    assert resolve_data_dir(FIXTURE_DATA, "http://127.0.0.1:9/x", tmp_path, 1) == FIXTURE_DATA
    (tmp_path / "yelp_labelled.txt").write_text("a\t1\n")
    with pytest.raises(DatasetError, match=r"lacks amazon_cells_labelled\.txt, imdb_labelled\.txt"):
        resolve_data_dir(tmp_path, "http://127.0.0.1:9/x", tmp_path / "cache", 1)
