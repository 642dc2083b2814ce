"""Starts `sentiment-serve` (gunicorn; the image's command) as a subprocess on a free port,
and always stops it."""

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import requests

from sentiment.serving.request_log import AccessLines
from sentiment_release.support.waiting import wait_until

ROOT = Path(__file__).resolve().parents[2]
SERVE = Path(sys.executable).parent / "sentiment-serve"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class Server:
    base_url: str
    process: subprocess.Popen
    log_path: Path
    runtime_dir: Path

    def logs(self) -> str:
        """What the server has logged, its access lines included (they are written within
        AccessLines.FLUSH_SECONDS of their request)."""
        time.sleep(3 * AccessLines.FLUSH_SECONDS)
        return self.log_path.read_text(errors="replace")

    def stop(self, timeout: float = 30) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                return self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
        return self.process.wait()


@contextmanager
def running_server(
    workdir: Path,
    bundles_dir: Path,
    workers: int = 2,
    startup_timeout: float = 60,
    settings: dict[str, str | None] | None = None,
    port: int | None = None,
) -> Iterator[Server]:
    """Yields once /healthz answers. The server is stopped on exit, whatever happened.
    `settings` are more SENTIMENT_* variables (None: unset)."""
    port = port or free_port()
    env = {
        **os.environ,
        "APP_ENV": "test",
        "SENTIMENT_SERVICE__HOST": "127.0.0.1",
        "SENTIMENT_SERVICE__PORT": str(port),
        "SENTIMENT_MODEL__BUNDLES_DIR": str(bundles_dir),
        "SENTIMENT_GUNICORN__WORKERS": str(workers),
        "SENTIMENT_GUNICORN__RUNTIME_DIR": str(workdir / "runtime"),
        "SENTIMENT_MONITORING__DIR": str(workdir / "monitoring"),
        **(settings or {}),
    }
    env = {name: value for name, value in env.items() if value is not None}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    workdir.mkdir(parents=True, exist_ok=True)
    log_path = workdir / "server.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [str(SERVE)], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
        )
    server = Server(f"http://127.0.0.1:{port}", process, log_path, workdir / "runtime")
    try:
        _wait_until_alive(server, startup_timeout)
        yield server
    finally:
        server.stop()


def _wait_until_alive(server: Server, timeout: float) -> None:
    def alive() -> bool | None:
        if server.process.poll() is not None:
            raise RuntimeError(f"server exited with {server.process.returncode}:\n{server.logs()}")
        try:
            return requests.get(f"{server.base_url}/healthz", timeout=1).status_code == 200 or None
        except requests.ConnectionError:
            return None

    wait_until(
        alive, timeout=timeout, interval=0.1, what=lambda: f"the server answers:\n{server.logs()}"
    )
