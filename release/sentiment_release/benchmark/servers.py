"""A server under test: started as a process of its own, timed from start to ready,
weighed (PSS of its whole process tree), stopped."""

import json
import os
import socket
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psutil
import requests

from sentiment.serving.settings.schema import GunicornSettings
from sentiment_release.support.errors import ReleaseError
from sentiment_release.support.process import start, stop, tail

READY_TIMEOUT_SECONDS = 60


@dataclass(frozen=True)
class ServerSpec:
    name: str
    argv: list[str]
    env: dict[str, str]
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@dataclass
class RunningServer:
    spec: ServerSpec
    process: psutil.Process
    seconds_to_ready: float

    def pss_mb(self) -> float:
        """Proportional set size of the server and its workers: shared pages counted once."""
        processes = [self.process, *self.process.children(recursive=True)]
        return sum(p.memory_full_info().pss for p in processes) / 1e6


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def server_cpus(wrk_core: int) -> list[str]:
    """`taskset` for the servers: every core but the load generator's, so the two do not
    fight over one (the figures were twice as noisy unpinned)."""
    cores = [str(core) for core in sorted(os.sched_getaffinity(0)) if core != wrk_core]
    return ["taskset", "-c", ",".join(cores)] if cores else []


BENCH_KEY_ID = "bench"
# The bench's key is rate-limited as a client's is (the check and the shared table are
# measured) with a limit the load never reaches.
UNREACHABLE_LIMIT = json.dumps({BENCH_KEY_ID: {"per_second": 1_000_000, "burst": 1_000_000}})

SERVICE, WSGI_FLOOR, FLASK_FLOOR, LECTURE = "service", "wsgi-floor", "flask-floor", "lecture"


def gunicorn_flags(workers: GunicornSettings) -> list[str]:
    """The service's worker settings as plain gunicorn flags. The floors run with these and
    nothing else: the service's config module (its logging, metrics directory, rate-limit
    table and hooks) is part of the service's cost, not of the floor's."""
    return ["--worker-class", workers.worker_class, "--workers", str(workers.workers),
            "--threads", str(workers.threads),
            "--keep-alive", str(workers.keepalive_seconds)]  # fmt: skip


def specs(wrk_core: int, key_hashes: Path, workers: GunicornSettings) -> list[ServerSpec]:
    """The service as prod runs it (its config; API keys checked against `key_hashes`);
    the two floors under plain gunicorn with the service's worker settings (`workers`);
    the lecture's app under Flask's development server. Each on a free port, off the load
    generator's core."""
    bin_dir = Path(sys.executable).parent
    python = str(bin_dir / "python")

    def floor(app: str) -> Callable[[int], list[str]]:
        return lambda port: [python, "-m", "gunicorn", *gunicorn_flags(workers),
                             "--bind", f"127.0.0.1:{port}", app]  # fmt: skip

    commands: dict[str, Callable[[int], list[str]]] = {
        SERVICE: lambda _: [str(bin_dir / "sentiment-serve"), "--env", "prod"], WSGI_FLOOR:
        floor("sentiment_release.benchmark.apps.wsgi_floor:app"), FLASK_FLOOR:
        floor("sentiment_release.benchmark.apps.flask_floor:create_app()"), LECTURE: lambda port:
        [python, "-m", "flask", "--app", "sentiment_release.benchmark.apps.lecture:create_app",
                               "run", "--no-reload", "--port", str(port)],
    }  # fmt: skip
    built = []
    for name, command in commands.items():
        port = free_port()
        # The service's port comes from its settings; the others ignore these.
        env = {"APP_ENV": "prod", "SENTIMENT_SERVICE__PORT": str(port),
               "SENTIMENT_AUTH__KEY_HASHES_FILE": str(key_hashes),
               "SENTIMENT_RATE_LIMIT__PER_KEY": UNREACHABLE_LIMIT}  # fmt: skip
        built.append(ServerSpec(name, [*server_cpus(wrk_core), *command(port)], env, port))
    return built


@contextmanager
def serving(spec: ServerSpec, log_dir: Path) -> Iterator[RunningServer]:
    log_path = log_dir / f"{spec.name}.log"
    # Audited as in prod, on a volume of the run's own (its runtime directory is private).
    env = {**spec.env, "SENTIMENT_MONITORING__DIR": str(log_dir / f"{spec.name}-monitoring")}
    with open(log_path, "wb") as log:
        started = time.monotonic()
        process = start(spec.argv, stdout=log, env=env)
    try:
        while True:
            if process.poll() is not None:
                raise ReleaseError(
                    f"{spec.name} exited with {process.returncode}:\n{tail(log_path)}"
                )
            try:
                if requests.get(f"{spec.url}/readyz", timeout=1).status_code == 200:
                    break
            except requests.RequestException:
                pass
            if time.monotonic() - started > READY_TIMEOUT_SECONDS:
                raise ReleaseError(f"{spec.name} was not ready in {READY_TIMEOUT_SECONDS}s:\n"
                                   f"{tail(log_path)}")  # fmt: skip
            time.sleep(0.01)
        yield RunningServer(spec, psutil.Process(process.pid), time.monotonic() - started)
    finally:
        stop(process)
