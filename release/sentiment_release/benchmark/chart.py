"""The benchmark's chart (PNG): requests/s and p99 of each measured server."""

from pathlib import Path

from sentiment_release.benchmark.run import CONCURRENCY, BenchmarkResult


def chart(result: BenchmarkResult, path: Path) -> None:
    # Imported here, when a chart is drawn: the CLI imports this module for every command.
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    figure, (rates, latency) = pyplot.subplots(1, 2, figsize=(10, 4))
    count = len(result.servers)
    width = 0.8 / count
    for index, server in enumerate(result.servers):
        positions = [n + index * width for n in range(len(CONCURRENCY))]
        rates.bar(positions, [server.at(c).requests_per_second for c in CONCURRENCY], width,
                  label=server.name)  # fmt: skip
        latency.plot([str(c) for c in CONCURRENCY], [server.at(c).p99_ms for c in CONCURRENCY],
                     marker="o", label=server.name)  # fmt: skip
    middle = width * (count - 1) / 2
    rates.set_xticks([n + middle for n in range(len(CONCURRENCY))],
                     [f"c={c}" for c in CONCURRENCY])  # fmt: skip
    rates.set_ylabel("/predict/ requests per second")
    rates.legend()
    latency.set_yscale("log")
    latency.set_xlabel("connections")
    latency.set_ylabel("p99 latency (ms)")
    latency.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    pyplot.close(figure)
