"""`make drift`: how far an environment's traffic has moved from its model's training
data, from the audit log: a table (Markdown), PNG charts and an HTML page.

For each model version the log holds, its predictions are compared with the reference
statistics its bundle recorded at training (sentiment/model/drift.py): the share of tokens the
model never saw, and the PSI of scores and of review lengths, over the whole log and over
consecutive windows of `window` reviews (so a shift shows when it began).
"""

import html
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from sentiment.model import ModelFolder
from sentiment.model.bundle import BundleError
from sentiment.model.drift import ReferenceStats
from sentiment_release.observe.audit_log import AuditLog

# Rules of thumb for PSI (sentiment/model/drift.py), shown beside the figures.
STABLE, SHIFTED = 0.1, 0.25


@dataclass
class Traffic:
    """What one model version answered in the log."""

    version: str
    scores: list[float] = field(default_factory=list)
    lengths: list[float] = field(default_factory=list)
    tokens: list[int] = field(default_factory=list)
    unknown: list[int] = field(default_factory=list)


@dataclass(frozen=True)
class Figures:
    reviews: int
    oov_share: float
    score_psi: float
    length_psi: float


@dataclass(frozen=True)
class VersionDrift:
    version: str
    reference: ReferenceStats
    overall: Figures
    windows: list[Figures]
    traffic: Traffic


@dataclass(frozen=True)
class DriftReport:
    environment: str
    drifts: list[VersionDrift]
    without_reference: list[str]  # versions whose bundle is not here or has no reference
    skipped_lines: int


def figures(reference: ReferenceStats, traffic: Traffic, start: int = 0, end: int | None = None):
    scores, lengths = traffic.scores[start:end], traffic.lengths[start:end]
    tokens, unknown = sum(traffic.tokens[start:end]), sum(traffic.unknown[start:end])
    return Figures(
        reviews=len(scores),
        oov_share=unknown / tokens if tokens else 0.0,
        score_psi=reference.scores.psi(scores) or 0.0,
        length_psi=reference.lengths.psi(lengths) or 0.0,
    )


def collect(log: AuditLog) -> dict[str, Traffic]:
    """The champion's answers in the log, by model version, in the log's order."""
    traffic: dict[str, Traffic] = {}
    for event in log.events():
        if event.get("answered_by", "champion") != "champion":
            continue
        version = str((event.get("model") or {}).get("version"))
        seen = traffic.setdefault(version, Traffic(version))
        for prediction in event["predictions"]:
            try:
                score, length = float(prediction["score"]), float(prediction["input_length"])
                tokens, unknown = int(prediction["tokens"]), int(prediction["unknown_tokens"])
            except (KeyError, TypeError, ValueError):
                continue
            seen.scores.append(score)
            seen.lengths.append(length)
            seen.tokens.append(tokens)
            seen.unknown.append(unknown)
    return traffic


def drift_report(environment: str, log: AuditLog, models: ModelFolder, window: int):
    drifts, without = [], []
    for version, traffic in collect(log).items():
        try:
            reference = models.metadata(version).reference
        except BundleError:
            reference = None
        if reference is None:
            without.append(version)
            continue
        windows = [
            figures(reference, traffic, start, start + window)
            for start in range(0, len(traffic.scores), window)
        ]
        drifts.append(VersionDrift(version, reference, figures(reference, traffic), windows,
                                   traffic))  # fmt: skip
    return DriftReport(environment, drifts, without, log.skipped_lines)


def verdict(psi: float) -> str:
    return "stable" if psi < STABLE else "shifted" if psi < SHIFTED else "a different population"


def markdown(report: DriftReport) -> str:
    lines = [
        f"# Drift of {report.environment}",
        "",
        "| model | reviews | unknown tokens (training) | score PSI | length PSI |",
        "|---|---|---|---|---|",
    ]
    for drift in report.drifts:
        overall, reference = drift.overall, drift.reference
        lines.append(
            f"| {drift.version} | {overall.reviews:,} | {overall.oov_share:.1%} "
            f"({reference.oov_share:.1%}) | {overall.score_psi:.3f} ({verdict(overall.score_psi)}) "
            f"| {overall.length_psi:.3f} ({verdict(overall.length_psi)}) |"
        )
    if report.without_reference:
        lines += ["", "No reference statistics here for: " + ", ".join(report.without_reference)]
    if report.skipped_lines:
        lines += ["", f"{report.skipped_lines} line(s) of the log were not audit events."]
    lines += ["", f"PSI: below {STABLE} stable, {STABLE} to {SHIFTED} shifted, above "
              f"{SHIFTED} a different population."]  # fmt: skip
    return "\n".join(lines) + "\n"


def charts(report: DriftReport, out: Path) -> list[Path]:
    """Per model version: score and length distributions against training's, and the
    figures window by window."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    written = []
    for drift in report.drifts:
        figure, axes = pyplot.subplots(1, 3, figsize=(15, 4.2))
        for axis, name, distribution, values in (
            (axes[0], "score", drift.reference.scores, drift.traffic.scores),
            (axes[1], "length (characters)", drift.reference.lengths, drift.traffic.lengths),
        ):
            _shares(axis, name, distribution.counts, distribution.bin_counts(values))
        windows = range(1, len(drift.windows) + 1)
        axes[2].plot(windows, [w.score_psi for w in drift.windows], marker="o", label="score PSI")
        axes[2].plot(windows, [w.length_psi for w in drift.windows], marker="o",
                     label="length PSI")  # fmt: skip
        axes[2].plot(windows, [w.oov_share for w in drift.windows], marker="o",
                     label="unknown-token share")  # fmt: skip
        axes[2].axhline(SHIFTED, color="grey", linestyle="--", linewidth=1)
        axes[2].set_xlabel("window")
        axes[2].set_title("by window")
        axes[2].legend()
        figure.suptitle(f"{report.environment}: model {drift.version}")
        figure.tight_layout()
        path = out / f"drift-{drift.version}.png"
        figure.savefig(path, dpi=90)
        pyplot.close(figure)
        written.append(path)
    return written


def _shares(axis, name: str, reference: list[int], live: list[int]) -> None:
    bins = range(len(reference))
    total_reference, total_live = sum(reference) or 1, sum(live) or 1
    axis.bar([b - 0.2 for b in bins], [c / total_reference for c in reference], width=0.4,
             label="training (held out)")  # fmt: skip
    axis.bar([b + 0.2 for b in bins], [c / total_live for c in live], width=0.4, label="traffic")
    axis.set_xlabel(f"{name}: training's deciles")
    axis.set_ylabel("share")
    axis.set_title(name)
    axis.legend()


def html_page(report: DriftReport, images: Iterable[Path]) -> str:
    rows = "".join(
        f"<tr><td>{html.escape(d.version)}</td><td>{d.overall.reviews:,}</td>"
        f"<td>{d.overall.oov_share:.1%} ({d.reference.oov_share:.1%})</td>"
        f"<td>{d.overall.score_psi:.3f}</td><td>{d.overall.length_psi:.3f}</td></tr>"
        for d in report.drifts
    )
    pictures = "".join(
        f'<p><img src="{html.escape(p.name)}" alt="drift chart"></p>' for p in images
    )
    title = html.escape(f"Drift of {report.environment}")
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{title}</title></head><body>"
        f"<h1>{title}</h1><table border='1' cellpadding='4'><tr><th>model</th><th>reviews</th>"
        f"<th>unknown tokens (training)</th><th>score PSI</th><th>length PSI</th></tr>{rows}"
        f"</table><p>PSI: below {STABLE} stable, {STABLE} to {SHIFTED} shifted, above {SHIFTED} "
        f"a different population.</p>{pictures}</body></html>\n"
    )


def write_report(report: DriftReport, out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    images = charts(report, out)
    table = out / "drift.md"
    table.write_text(markdown(report), encoding="utf-8")
    page = out / "drift.html"
    page.write_text(html_page(report, images), encoding="utf-8")
    return [table, page, *images]
