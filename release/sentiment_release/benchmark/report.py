"""The benchmark's tables (Markdown): each server's figures, the service's ratios to each
reference (the two floors, the lecture's app, the quoted stacks), and config/benchmark.yaml's
targets checked."""

import os
from collections.abc import Mapping
from dataclasses import dataclass

from sentiment_release.benchmark.run import CONCURRENCY, BenchmarkResult, ServerResult
from sentiment_release.benchmark.servers import FLASK_FLOOR, LECTURE, SERVICE, WSGI_FLOOR
from sentiment_release.benchmark.settings import QuotedServer, Targets

# The measured references, as the report names them.
REFERENCES = {WSGI_FLOOR: "bare WSGI floor", FLASK_FLOOR: "Flask floor", LECTURE: "lecture app"}
# Nothing answers faster than a floor: the service's rate reads as a share of theirs, and
# as a speedup over the others'.
FLOORS = (WSGI_FLOOR, FLASK_FLOOR)
# The concurrencies the ratios are taken at; p99 is compared at the highest.
RATIO_AT = (8, 32)
P99_AT = max(CONCURRENCY)


@dataclass(frozen=True)
class Verdict:
    what: str
    measured: str
    target: str
    met: bool


@dataclass(frozen=True)
class Comparison:
    """The service's requests/s over a reference's at each of RATIO_AT, and its p99 over
    the reference's at P99_AT."""

    against: str
    rate: dict[int, float]
    p99: float
    is_floor: bool

    def rate_text(self, connections: int) -> str:
        ratio = self.rate[connections]
        return f"{ratio:.0%}" if self.is_floor else _times(ratio)


def server_cores() -> int:
    """Cores left to the servers: wrk takes one."""
    return max(1, len(os.sched_getaffinity(0)) - 1)


def _ratio(measured: float, reference: float) -> float:
    """measured / reference; a reference that answered nothing makes no ratio (nan: every
    comparison with it fails, so the target reads MISSED)."""
    return measured / reference if reference > 0 else float("nan")


def _times(ratio: float) -> str:
    return f"{ratio:.1f}x" if ratio < 10 else f"{ratio:.0f}x"


def compare(
    service: ServerResult, against: str, rates: Mapping[int, float], p99_ms: float, is_floor: bool
) -> Comparison:
    return Comparison(
        against,
        {c: _ratio(service.at(c).requests_per_second, rates[c]) for c in RATIO_AT},
        _ratio(service.at(P99_AT).p99_ms, p99_ms),
        is_floor,
    )


def comparisons(result: BenchmarkResult, quoted: list[QuotedServer]) -> dict[str, Comparison]:
    """The service against each measured reference (by server name) and each quoted stack
    (by its name)."""
    service = result.server(SERVICE)
    found = {}
    for name, label in REFERENCES.items():
        reference = result.server(name)
        rates = {c: reference.at(c).requests_per_second for c in RATIO_AT}
        found[name] = compare(service, label, rates, reference.at(P99_AT).p99_ms, name in FLOORS)
    for stack in quoted:
        found[stack.name] = compare(service, f"{stack.name} (quoted)", stack.requests_per_second,
                                    stack.p99_ms, is_floor=False)  # fmt: skip
    return found


def verdicts(
    result: BenchmarkResult, targets: Targets, quoted: list[QuotedServer], image_mb: float | None
) -> list[Verdict]:
    ratios = comparisons(result, quoted)
    floor, lecture = ratios[WSGI_FLOOR], ratios[LECTURE]
    service = result.server(SERVICE)
    per_core = result.batch_reviews_per_second / server_cores()
    errors = sum(point.errors for server in result.servers for point in server.points)
    found = [
        *(Verdict(f"/predict/ vs {floor.against}, c={c}", floor.rate_text(c),
                  f">= {targets.min_share_of_wsgi_floor:.0%}",
                  floor.rate[c] >= targets.min_share_of_wsgi_floor)
          for c in RATIO_AT),
        Verdict(f"p99 vs {floor.against}, c={P99_AT}", f"{floor.p99:.2f}x",
                f"<= {targets.max_p99_vs_wsgi_floor:g}x",
                floor.p99 <= targets.max_p99_vs_wsgi_floor),
        Verdict(f"/predict/ vs {lecture.against}, c=8", lecture.rate_text(8),
                f">= {targets.min_speedup_vs_lecture:g}x",
                lecture.rate[8] >= targets.min_speedup_vs_lecture),
        *(Verdict(f"/predict/ vs {ratios[stack.name].against}, c=8",
                  ratios[stack.name].rate_text(8), f">= {targets.min_speedup_vs_quoted:g}x",
                  ratios[stack.name].rate[8] >= targets.min_speedup_vs_quoted)
          for stack in quoted),
        Verdict(f"batches of {result.batch_size}, reviews/s per server core", f"{per_core:,.0f}",
                f">= {targets.min_batch_reviews_per_core:,.0f}",
                per_core >= targets.min_batch_reviews_per_core),
        Verdict("start to ready", f"{service.seconds_to_ready:.2f} s",
                f"<= {targets.max_seconds_to_ready:g} s",
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


def markdown(result: BenchmarkResult, quoted: list[QuotedServer], checks: list[Verdict]) -> str:
    header = "| server | " + " | ".join(f"c={c} req/s" for c in CONCURRENCY)
    lines = [
        f"{header} | p99 at c={P99_AT} | start to ready | PSS |",
        "|---|" + "---|" * (len(CONCURRENCY) + 3),
    ]
    for server in result.servers:
        rates = " | ".join(f"{server.at(c).requests_per_second:,.0f}" for c in CONCURRENCY)
        lines.append(f"| {server.name} | {rates} | {server.at(P99_AT).p99_ms:.1f} ms | "
                     f"{server.seconds_to_ready:.2f} s | {server.pss_mb:.0f} MB |")  # fmt: skip
    for stack in quoted:
        rates = " | ".join(f"{stack.requests_per_second[c]:,.0f}" for c in CONCURRENCY)
        lines.append(f"| {stack.name} (quoted) | {rates} | {stack.p99_ms:.1f} ms | - | - |")
    cores = server_cores()
    lines += [
        "",
        f"One review of {result.review_chars} characters per request ({result.seconds:g} s per "
        f"point, wrk on one core); batches of {result.batch_size}: "
        f"{result.batch_reviews_per_second:,.0f} reviews/s "
        f"({cores} server core{'s' * (cores > 1)}). The floors run under plain gunicorn with "
        "the service's worker settings.",
    ]
    if quoted:
        lines.append(
            "Quoted rows are not measured by this run: measured by hand on this machine, not "
            "re-run ("
            + "; ".join(f"{stack.name}: `{stack.how}`, {stack.measured}" for stack in quoted)
            + ")."
        )
    columns = " | ".join(f"c={c} req/s" for c in RATIO_AT)
    lines += [
        "",
        f"| the service against | {columns} | p99 at c={P99_AT} |",
        "|---|" + "---|" * (len(RATIO_AT) + 1),
        *(
            f"| {ratio.against} | {' | '.join(ratio.rate_text(c) for c in RATIO_AT)} | "
            f"{ratio.p99:.2f}x |"
            for ratio in comparisons(result, quoted).values()
        ),
        "",
        "Requests/s as a share of a floor's, as a speedup over the others'; p99 as the "
        "service's over theirs (under 1: shorter).",
        "",
        "| target | measured | wanted | |",
        "|---|---|---|---|",
        *(
            f"| {v.what} | {v.measured} | {v.target} | {'met' if v.met else 'MISSED'} |"
            for v in checks
        ),
    ]
    return "\n".join(lines) + "\n"
