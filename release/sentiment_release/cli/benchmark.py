"""`sentiment bench`: the service beside the floors of its stack (a bare WSGI app and a
Flask app answering a constant) and the lecture's app."""

import sys
from pathlib import Path

import click

from sentiment_release.benchmark.chart import chart
from sentiment_release.benchmark.report import markdown, verdicts
from sentiment_release.benchmark.run import benchmark
from sentiment_release.benchmark.settings import load_benchmark_settings
from sentiment_release.cli.options import data_dir_option
from sentiment_release.cli.output import log, reports_errors, workspace
from sentiment_release.training import data_dir_for, load_dataset


@click.command()
@data_dir_option
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path),
              default=Path("docs/benchmark"), show_default=True,
              help="Where benchmark.md and benchmark.png are written.")  # fmt: skip
@click.option("--seconds", type=click.FloatRange(1, 600), default=None,
              help="Per point (default: config/benchmark.yaml).")  # fmt: skip
@click.option("--strict", is_flag=True, help="Exit 1 when a target is missed.")
@reports_errors
def bench(data_dir: Path | None, out_dir: Path, seconds: float | None, strict: bool) -> None:
    """Measure /predict/ against the bare WSGI and Flask floors and the lecture's app (wrk),
    batches, start to ready and memory; print the tables and check config/benchmark.yaml's
    targets."""
    space = workspace(data_dir)
    settings = load_benchmark_settings(space.project.config_dir)
    sources = space.training.dataset.sources
    texts = load_dataset(data_dir_for(space.training, data_dir), sources).texts
    prod = space.service_settings("prod")
    result = benchmark(texts, prod.service.max_batch_size, seconds or settings.seconds,
                       settings.warmup_seconds, prod.gunicorn, log)  # fmt: skip
    latest = space.records.latest_build()
    checks = verdicts(result, settings.targets, settings.quoted,
                      latest.size_mb if latest else None)  # fmt: skip
    out_dir.mkdir(parents=True, exist_ok=True)
    table = markdown(result, settings.quoted, checks)
    (out_dir / "benchmark.md").write_text(table, encoding="utf-8")
    chart(result, out_dir / "benchmark.png")
    click.echo(table)
    click.echo(f"written: {out_dir / 'benchmark.md'}, {out_dir / 'benchmark.png'}")
    if strict and not all(check.met for check in checks):
        sys.exit(1)


COMMANDS = (bench,)
