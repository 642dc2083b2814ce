"""One benchmark run: each server started in turn, warmed up, loaded at each concurrency
with wrk, weighed; the service also with full batches."""

import json
import os
import statistics
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from sentiment.serving.api_keys import new_key
from sentiment.serving.settings.schema import GunicornSettings
from sentiment_release.benchmark.servers import BENCH_KEY_ID, SERVICE, RunningServer, serving, specs
from sentiment_release.benchmark.wrk import LoadResult, load
from sentiment_release.support.clock import utc_now

CONCURRENCY = (1, 8, 32)


def wrk_core() -> int:
    """wrk's core: the last one this process may use; the servers get the others."""
    return max(os.sched_getaffinity(0))


@dataclass
class ServerResult:
    name: str
    seconds_to_ready: float
    pss_mb: float
    points: list[LoadResult] = field(default_factory=list)

    def at(self, connections: int) -> LoadResult:
        return next(point for point in self.points if point.connections == connections)


@dataclass
class BenchmarkResult:
    servers: list[ServerResult]
    seconds: float
    review_chars: int
    batch_size: int
    batch: LoadResult | None = None

    def server(self, name: str) -> ServerResult:
        return next(result for result in self.servers if result.name == name)

    @property
    def batch_reviews_per_second(self) -> float:
        return self.batch.requests_per_second * self.batch_size if self.batch else 0.0


def typical_review(texts: list[str]) -> str:
    """The review of median length: what one request usually carries."""
    length = statistics.median_low(len(text) for text in texts)
    return next(text for text in texts if len(text) == length)


def benchmark(
    texts: list[str],
    batch_size: int,
    seconds: float,
    warmup: float,
    workers: GunicornSettings,
    log: Callable[[str], None],
) -> BenchmarkResult:
    """The servers of servers.specs one after another; `workers` are the service's gunicorn
    worker settings in prod, which the floors run with."""
    review = typical_review(texts)
    single = json.dumps({"review": review}).encode()
    batch = json.dumps({"reviews": texts[:batch_size]}).encode()
    result = BenchmarkResult([], seconds, len(review), batch_size)
    with tempfile.TemporaryDirectory(prefix="bench-") as scratch:
        # Prod asks for API keys: every request carries one, as clients' do.
        key, hashed = new_key(BENCH_KEY_ID, utc_now())
        key_hashes = Path(scratch) / "key-hashes"
        key_hashes.write_text(hashed.line() + "\n")
        core = wrk_core()
        for spec in specs(core, key_hashes, workers):
            with serving(spec, Path(scratch)) as server:
                log(f"{spec.name}: ready in {server.seconds_to_ready:.2f}s")
                measured = ServerResult(spec.name, server.seconds_to_ready, 0.0)
                load(f"{spec.url}/predict/", single, 8, warmup, core, key)
                for connections in CONCURRENCY:
                    point = load(f"{spec.url}/predict/", single, connections, seconds, core, key)
                    log(f"{spec.name}: c={connections} {point.requests_per_second:,.0f} req/s, "
                        f"p99 {point.p99_ms:.1f} ms, {point.errors} errors")  # fmt: skip
                    measured.points.append(point)
                measured.pss_mb = server.pss_mb()
                if spec.name == SERVICE:
                    result.batch = _batch(server, batch, seconds, core, log, batch_size, key)
                result.servers.append(measured)
    return result


def _batch(
    server: RunningServer,
    body: bytes,
    seconds: float,
    core: int,
    log: Callable[[str], None],
    size: int,
    api_key: str,
) -> LoadResult:
    point = load(f"{server.spec.url}/v1/predict", body, 8, seconds, core, api_key)
    log(f"service: batches of {size}: {point.requests_per_second * size:,.0f} reviews/s")
    return point
