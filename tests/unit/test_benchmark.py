"""make bench: wrk's output read right, the targets judged right, the report written."""

import shutil
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from benchmark.report import Targets, chart, markdown, verdicts
from benchmark.run import BenchmarkResult, ServerResult, typical_review
from benchmark.wrk import LoadResult, load, parse
from support.errors import ReleaseError

WRK_OUTPUT = """Running 10s test @ http://127.0.0.1:8000/predict/
  1 threads and 32 connections
  Latency Distribution
     50%  612.00us
     75%    2.10ms
     90%    1.17s{space}
     99%    1.57s{space}
  19000 requests in 10.00s, 3.10MB read
  Socket errors: connect 0, read 2, write 1, timeout 3
  Non-2xx or 3xx responses: 4
Requests/sec:   1900.50
""".format(space=" ")  # wrk pads seconds with a trailing space


def test_wrk_output_is_read_with_its_units_and_every_failure_counted():
    assert parse(WRK_OUTPUT, 32) == LoadResult(32, 1900.5, 0.612, 1570.0, 10)
    clean = WRK_OUTPUT.replace("  Socket errors: connect 0, read 2, write 1, timeout 3\n", "")
    assert parse(clean.replace("  Non-2xx or 3xx responses: 4\n", ""), 32).errors == 0


def test_output_without_figures_is_an_error_not_a_zero():
    with pytest.raises(ReleaseError, match="wrk printed no rate or latency"):
        parse("unable to connect to 127.0.0.1:1 Connection refused\n", 8)


TARGETS = Targets(
    min_floor_share=0.8, max_p99_vs_floor=2.0, min_classic_speedup=20,
    min_batch_reviews_per_core=100_000, max_seconds_to_ready=1.5, max_pss_mb=160,
    max_image_mb=300,
)  # fmt: skip


def server(name: str, rate: float, p99: float, ready: float = 0.5, pss: float = 60) -> ServerResult:
    points = [LoadResult(c, rate, p99 / 4, p99, 0) for c in (1, 8, 32)]
    return ServerResult(name, ready, pss, points)


def result(service_rate: float, batch_rate: float) -> BenchmarkResult:
    return BenchmarkResult(
        [server("service", service_rate, 20.0), server("floor", 4000, 15.0),
         server("classic", 100, 900.0, pss=180)],
        seconds=10, review_chars=55, batch_size=1000,
        batch=LoadResult(8, batch_rate, 5.0, 40.0, 0),
    )  # fmt: skip


def test_the_targets_are_judged_from_ratios_measured_in_one_run(monkeypatch):
    monkeypatch.setattr("benchmark.report.server_cores", lambda: 1)
    met = {v.what: v for v in verdicts(result(3600, 120), TARGETS, image_mb=153)}
    assert all(v.met for v in met.values()), [v for v in met.values() if not v.met]
    assert met["/predict/ vs floor, c=8"].measured == "90%"
    assert met["/predict/ vs classic app, c=8"].measured == "36x"
    assert met["batches of 1000, reviews/s per server core"].measured == "120,000"
    missed = {v.what for v in verdicts(result(3000, 90), TARGETS, image_mb=400) if not v.met}
    assert missed == {
        "/predict/ vs floor, c=8", "/predict/ vs floor, c=32",
        "batches of 1000, reviews/s per server core", "image size (latest build)",
    }  # fmt: skip


def test_the_report_has_a_row_per_server_and_a_line_per_target(tmp_path):
    checks = verdicts(result(3000, 90), TARGETS, image_mb=None)
    table = markdown(result(3000, 90), checks)
    assert "| service | 3,000 | 3,000 | 3,000 | 20.0 ms | 0.50 s | 60 MB |" in table
    assert "| /predict/ vs floor, c=8 | 75% | >= 80% | MISSED |" in table
    assert "image size" not in table  # no build here: not judged
    chart(result(3000, 90), tmp_path / "chart.png")
    assert (tmp_path / "chart.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_typical_review_is_the_one_of_median_length():
    assert typical_review(["a", "abc", "ab", "abcd", "abcde"]) == "abc"


@pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not installed")
@pytest.mark.parametrize("api_key", [None, "snt_bench_" + "k" * 43])
def test_wrk_posts_the_body_and_the_key_it_is_given(api_key):
    received: list[bytes] = []
    authorization: set[str | None] = set()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            received.append(self.rfile.read(int(self.headers["Content-Length"])))
            authorization.add(self.headers.get("Authorization"))
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        body = b'{"review": "it\'s \\"quoted\\"; $(id) `id`"}'
        point = load(f"http://127.0.0.1:{httpd.server_port}/", body, 2, 1, None, api_key)
    finally:
        httpd.shutdown()
    assert point.requests_per_second > 0
    assert point.errors == 0
    assert received
    assert set(received) == {body}
    assert authorization == {f"Bearer {api_key}" if api_key else None}


def test_a_reference_that_answered_nothing_reads_missed_not_a_crash(monkeypatch):
    monkeypatch.setattr("benchmark.report.server_cores", lambda: 1)
    broken = result(3600, 120)
    broken.servers[1] = server("floor", 0, 0.0)
    judged = {v.what: v for v in verdicts(broken, TARGETS, image_mb=None)}
    assert not judged["/predict/ vs floor, c=8"].met
    assert judged["/predict/ vs floor, c=8"].measured == "nan%"
