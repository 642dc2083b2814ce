"""Behaviour that needs a private server: start-up, readiness, workers, shutdown."""

import json
import os
import re
import signal
import socket
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from sentiment.model.bundle import MODEL_FILE
from tests.conftest import train_fixture_model
from tests.integration.server import ROOT, SERVE

pytestmark = pytest.mark.integration


def metric_value(text: str, sample: str) -> float:
    match = re.search(rf"^{re.escape(sample)} (\S+)$", text, re.MULTILINE)
    assert match, f"{sample} not in metrics"
    return float(match.group(1))


def test_metrics_are_summed_across_workers(own_server, trained_registry, tmp_path):
    server = own_server(tmp_path, trained_registry, workers=2)
    sent = 0

    def predict(_: int) -> None:
        requests.post(f"{server.base_url}/predict/", json={"review": "I hate it"}, timeout=10)

    # The kernel decides which worker accepts a connection, and one idle worker can take
    # every request sent one after another. Four in flight at a time keep a sync worker
    # busy, so the other one accepts; keep going (at least 40, at most 400) until both
    # have answered.
    with ThreadPoolExecutor(max_workers=4) as pool:
        while sent < 40 or (len(list(server.runtime_dir.glob("counter_*.db"))) < 2 and sent < 400):
            list(pool.map(predict, range(8)))
            sent += 8
    worker_files = {p.name for p in server.runtime_dir.glob("counter_*.db")}
    assert len(worker_files) >= 2, f"expected samples from both workers after {sent} requests"
    sample = 'sentiment_http_requests_total{method="POST",route="/predict/",status="200"}'
    for _ in range(6):  # whichever worker answers the scrape, it reports the total
        text = requests.get(f"{server.base_url}/metrics", timeout=5).text
        assert metric_value(text, sample) == sent
        assert metric_value(text, 'sentiment_predictions_total{label="negative"}') == sent


def test_recycled_workers_leave_their_counts_in_one_archive(own_server, trained_registry, tmp_path):
    """Workers recycled every 20 requests: their samples are summed into the archive files
    and their own files go, so the directory stays small and the totals stay right."""
    server = own_server(tmp_path, trained_registry, workers=2, settings={
        "SENTIMENT_GUNICORN__MAX_REQUESTS": "20", "SENTIMENT_GUNICORN__MAX_REQUESTS_JITTER": "0",
    })  # fmt: skip
    sent = 0
    with requests.Session() as session:
        for _ in range(150):
            response = session.post(f"{server.base_url}/predict/", json={"review": "bad"},
                                    timeout=10)  # fmt: skip
            assert response.status_code == 200
            sent += 1
    time.sleep(1)  # the last recycled worker's exit is handled
    files = sorted(p.name for p in server.runtime_dir.glob("*.db"))
    assert {"counter_archive.db", "histogram_archive.db"} <= set(files)
    assert len(files) <= 2 + 2 * 2, files  # the archives, and two live workers' files
    sample = 'sentiment_http_requests_total{method="POST",route="/predict/",status="200"}'
    text = requests.get(f"{server.base_url}/metrics", timeout=5).text
    assert metric_value(text, sample) == sent
    assert metric_value(text, 'sentiment_predictions_total{label="negative"}') == sent
    assert (
        metric_value(
            text, 'sentiment_http_request_duration_seconds_count{method="POST",route="/predict/"}'
        )
        == sent
    )


def test_servers_on_one_machine_share_no_runtime_state(own_server, trained_registry, tmp_path):
    """Found under attack, with one fixed directory for every server: a second start that
    failed on a busy port wiped the running server's metrics and rate-limit table, and
    stopping another server left the running one answering /readyz 503 for good."""
    private = {"SENTIMENT_GUNICORN__RUNTIME_DIR": None}
    running = own_server(tmp_path / "running", trained_registry, workers=1, settings=private)
    for _ in range(3):
        requests.post(f"{running.base_url}/predict/", json={"review": "good"}, timeout=5)
    sample = 'sentiment_http_requests_total{method="POST",route="/predict/",status="200"}'
    port = running.base_url.rsplit(":", 1)[1]
    env = {**os.environ, "APP_ENV": "test", "SENTIMENT_SERVICE__PORT": port,
           "SENTIMENT_MODEL__BUNDLES_DIR": str(trained_registry),
           "SENTIMENT_MONITORING__DIR": str(tmp_path / "second")}  # fmt: skip
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    failed = subprocess.run([str(SERVE)], cwd=ROOT, env=env, capture_output=True, timeout=60)
    assert failed.returncode != 0  # its port is taken
    other = own_server(tmp_path / "other", trained_registry, workers=1, settings=private)
    other.stop()
    assert "Shutting down" in other.logs()
    text = requests.get(f"{running.base_url}/metrics", timeout=5).text
    assert metric_value(text, sample) == 3
    assert requests.get(f"{running.base_url}/readyz", timeout=5).status_code == 200
    [directory] = re.findall(r"runtime directory (\S+) \(private\)", running.logs())
    assert Path(directory).is_dir()
    assert running.stop() == 0
    assert not Path(directory).exists()  # a private one goes with its server


def test_slow_clients_do_not_delay_health_or_predictions(own_server, trained_registry, tmp_path):
    """Twenty requests that stop halfway (headers sent, the body never) hold threads, not
    the workers: /healthz and predictions still answer at once."""
    server = own_server(tmp_path, trained_registry, workers=2)
    host, port = server.base_url.removeprefix("http://").split(":")
    stalled = []
    try:
        for _ in range(20):
            connection = socket.create_connection((host, int(port)))
            connection.sendall(b"POST /predict/ HTTP/1.1\r\nHost: x\r\n"
                               b"Content-Length: 40\r\n\r\n{\"rev")  # fmt: skip
            stalled.append(connection)
        time.sleep(0.5)
        started = time.monotonic()
        assert requests.get(f"{server.base_url}/healthz", timeout=2).status_code == 200
        predicted = requests.post(f"{server.base_url}/predict/", json={"review": "great"},
                                  timeout=2)  # fmt: skip
        assert predicted.status_code == 200
        assert time.monotonic() - started < 2
    finally:
        for connection in stalled:
            connection.close()


def test_sigterm_drains_not_ready_first_and_loses_no_request(
    own_server, trained_registry, tmp_path
):
    """A load balancer's view: requests keep coming until /readyz fails, then stop. With a
    drain, every one of them is answered, and so is everything sent while the balancer had
    not noticed yet; then the server stops by itself, cleanly."""
    server = own_server(tmp_path, trained_registry, workers=2,
                        settings={"SENTIMENT_GUNICORN__DRAIN_SECONDS": "2"})  # fmt: skip
    answers: list[int | str] = []
    noticed = threading.Event()

    def client() -> None:
        with requests.Session() as session:
            while not noticed.is_set():
                try:
                    answers.append(
                        session.post(
                            f"{server.base_url}/predict/", json={"review": "good"}, timeout=5
                        ).status_code
                    )
                except requests.RequestException as error:
                    answers.append(type(error).__name__)

    def balancer() -> None:
        while True:
            ready = requests.get(f"{server.base_url}/readyz", timeout=5)
            if ready.status_code == 503:
                assert ready.json()["error"]["code"] == "draining"
                time.sleep(0.5)  # a balancer notices late
                noticed.set()
                return
            time.sleep(0.05)

    threads = [threading.Thread(target=client) for _ in range(4)]
    watcher = threading.Thread(target=balancer)
    for thread in [*threads, watcher]:
        thread.start()
    time.sleep(0.5)
    server.process.send_signal(signal.SIGTERM)
    watcher.join(timeout=10)
    for thread in threads:
        thread.join(timeout=10)
    assert noticed.is_set()
    assert answers
    assert set(answers) == {200}, [a for a in answers if a != 200][:5]
    assert server.process.wait(timeout=30) == 0
    assert "serving 2.0s more, then stopping" in server.logs()


def test_not_ready_without_a_model_then_ready_once_one_is_published(own_server, tmp_path):
    bundles_dir = tmp_path / "registry"
    first = own_server(tmp_path / "first", bundles_dir, workers=1)
    assert requests.get(f"{first.base_url}/healthz", timeout=5).status_code == 200
    ready = requests.get(f"{first.base_url}/readyz", timeout=5)
    assert ready.status_code == 503
    assert ready.json()["error"]["code"] == "model_not_ready"
    predict = requests.post(f"{first.base_url}/predict/", json={"review": "fine"}, timeout=5)
    assert predict.status_code == 503
    assert "no current model" in first.logs()
    first.stop()

    published = train_fixture_model(bundles_dir).published
    second = own_server(tmp_path / "second", bundles_dir, workers=1)
    ready = requests.get(f"{second.base_url}/readyz", timeout=5)
    assert ready.status_code == 200
    assert ready.json()["model_version"] == published.version


def test_a_tampered_bundle_is_refused(own_server, registry_copy, tmp_path):
    model_path = registry_copy.path_of(registry_copy.current_version()) / MODEL_FILE
    model_path.write_bytes(model_path.read_bytes()[:-1] + b"!")
    server = own_server(tmp_path / "server", registry_copy.root, workers=1)
    ready = requests.get(f"{server.base_url}/readyz", timeout=5)
    assert ready.status_code == 503
    assert "failed verification" in ready.json()["error"]["message"]
    assert str(registry_copy.root) not in ready.text
    response = requests.post(f"{server.base_url}/predict/", json={"review": "fine"}, timeout=5)
    assert response.status_code == 503
    errors = [
        json.loads(line)
        for line in server.logs().splitlines()
        if line.startswith("{") and '"ERROR"' in line
    ]
    assert any("refusing to load a tampered" in entry["message"] for entry in errors)


def test_sigterm_shuts_down_cleanly(own_server, trained_registry, tmp_path):
    server = own_server(tmp_path, trained_registry, workers=2)
    assert requests.get(f"{server.base_url}/readyz", timeout=5).status_code == 200
    assert server.stop(timeout=30) == 0
    assert "Shutting down" in server.logs()


def test_logs_are_json_lines_with_request_ids(own_server, trained_registry, tmp_path):
    server = own_server(tmp_path, trained_registry, workers=1)
    requests.get(f"{server.base_url}/healthz", headers={"X-Request-ID": "log-1"}, timeout=5)
    server.stop()
    entries = [json.loads(line) for line in server.logs().splitlines() if line.strip()]
    access = [e for e in entries if e.get("request_id") == "log-1"]
    assert access
    assert access[0]["route"] == "/healthz"
    assert access[0]["status"] == 200
