"""The benchmark's table (Markdown), its targets checked, and its chart (PNG)."""

import os
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from benchmark.run import CONCURRENCY, BenchmarkResult
from support.config import load_yaml_settings

BENCHMARK_FILE = "benchmark.yaml"


class Targets(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    min_floor_share: float = Field(gt=0, le=1)
    max_p99_vs_floor: float = Field(gt=0)
    min_classic_speedup: float = Field(gt=0)
    min_batch_reviews_per_core: float = Field(gt=0)
    max_seconds_to_ready: float = Field(gt=0)
    max_pss_mb: float = Field(gt=0)
    max_image_mb: float = Field(gt=0)


class BenchmarkSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    seconds: float = Field(ge=1, le=600)
    warmup_seconds: float = Field(ge=1, le=600)
    targets: Targets


def load_benchmark_settings(config_dir: Path) -> BenchmarkSettings:
    return load_yaml_settings(BenchmarkSettings, config_dir / BENCHMARK_FILE)


@dataclass(frozen=True)
class Verdict:
    what: str
    measured: str
    target: str
    met: bool


def server_cores() -> int:
    """Cores left to the servers: wrk takes one."""
    return max(1, len(os.sched_getaffinity(0)) - 1)


def _ratio(measured: float, reference: float) -> float:
    """measured / reference; a reference that answered nothing makes no ratio (nan: every
    comparison with it fails, so the target reads MISSED)."""
    return measured / reference if reference > 0 else float("nan")


def verdicts(result: BenchmarkResult, targets: Targets, image_mb: float | None) -> list[Verdict]:
    service, floor, classic = (result.server(n) for n in ("service", "floor", "classic"))
    share = {c: _ratio(service.at(c).requests_per_second, floor.at(c).requests_per_second)
             for c in (8, 32)}  # fmt: skip
    p99 = _ratio(service.at(32).p99_ms, floor.at(32).p99_ms)
    speedup = _ratio(service.at(8).requests_per_second, classic.at(8).requests_per_second)
    per_core = result.batch_reviews_per_second / server_cores()
    errors = sum(point.errors for server in result.servers for point in server.points)
    found = [
        *(Verdict(f"/predict/ vs floor, c={c}", f"{share[c]:.0%}",
                  f">= {targets.min_floor_share:.0%}", share[c] >= targets.min_floor_share)
          for c in (8, 32)),
        Verdict("p99 vs floor, c=32", f"{p99:.2f}x", f"<= {targets.max_p99_vs_floor}x",
                p99 <= targets.max_p99_vs_floor),
        Verdict("/predict/ vs classic app, c=8", f"{speedup:.0f}x",
                f">= {targets.min_classic_speedup:.0f}x", speedup >= targets.min_classic_speedup),
        Verdict(f"batches of {result.batch_size}, reviews/s per server core", f"{per_core:,.0f}",
                f">= {targets.min_batch_reviews_per_core:,.0f}",
                per_core >= targets.min_batch_reviews_per_core),
        Verdict("start to ready", f"{service.seconds_to_ready:.2f} s",
                f"<= {targets.max_seconds_to_ready} s",
                service.seconds_to_ready <= targets.max_seconds_to_ready),
        Verdict("PSS, master and workers", f"{service.pss_mb:.0f} MB",
                f"<= {targets.max_pss_mb:.0f} MB", service.pss_mb <= targets.max_pss_mb),
        Verdict("failed requests", str(errors), "0", errors == 0),
    ]  # fmt: skip
    if image_mb is not None:
        found.append(Verdict("image size (latest build)", f"{image_mb:.0f} MB",
                             f"<= {targets.max_image_mb:.0f} MB",
                             image_mb <= targets.max_image_mb))  # fmt: skip
    return found


def markdown(result: BenchmarkResult, checks: list[Verdict]) -> str:
    header = "| server | " + " | ".join(f"c={c} req/s" for c in CONCURRENCY)
    lines = [
        f"{header} | p99 at c=32 | start to ready | PSS |",
        "|---|" + "---|" * (len(CONCURRENCY) + 3),
    ]
    for server in result.servers:
        rates = " | ".join(f"{server.at(c).requests_per_second:,.0f}" for c in CONCURRENCY)
        lines.append(f"| {server.name} | {rates} | {server.at(32).p99_ms:.1f} ms | "
                     f"{server.seconds_to_ready:.2f} s | {server.pss_mb:.0f} MB |")  # fmt: skip
    lines += [
        "",
        f"One review of {result.review_chars} characters per request ({result.seconds:g} s per "
        f"point, wrk on one core); batches of {result.batch_size}: "
        f"{result.batch_reviews_per_second:,.0f} reviews/s "
        f"({server_cores()} server core{'s' * (server_cores() > 1)}).",
        "",
        "| target | measured | wanted | |",
        "|---|---|---|---|",
        *(
            f"| {v.what} | {v.measured} | {v.target} | {'met' if v.met else 'MISSED'} |"
            for v in checks
        ),
    ]
    return "\n".join(lines) + "\n"


def chart(result: BenchmarkResult, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    figure, (rates, latency) = pyplot.subplots(1, 2, figsize=(10, 4))
    width = 0.8 / len(result.servers)
    for index, server in enumerate(result.servers):
        positions = [n + index * width for n in range(len(CONCURRENCY))]
        rates.bar(positions, [server.at(c).requests_per_second for c in CONCURRENCY], width,
                  label=server.name)  # fmt: skip
        latency.plot([str(c) for c in CONCURRENCY], [server.at(c).p99_ms for c in CONCURRENCY],
                     marker="o", label=server.name)  # fmt: skip
    rates.set_xticks([n + width for n in range(len(CONCURRENCY))], [f"c={c}" for c in CONCURRENCY])
    rates.set_ylabel("/predict/ requests per second")
    rates.legend()
    latency.set_yscale("log")
    latency.set_xlabel("connections")
    latency.set_ylabel("p99 latency (ms)")
    latency.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    pyplot.close(figure)
