"""Champion against challenger: both scored on the same sets, and whether the challenger
may take the champion's place.

The sets are the held-out split of the base data (the UCI files, split as every model's
is: the same seed, the same stratification, so neither model trained on it), the UAT's
golden reviews, and the newest feedback, kept out of the challenger's training for this.
The challenger is refused when any metric on any set is worse than the champion's by more
than the tolerance, and when no metric on any set is better by at least min_gain
(config/training.yaml `challenger`): a retrain that changes nothing (the same data gives
the same model) proposes nothing. With no champion yet, a challenger that passed the
quality gate is accepted.
"""

import json
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from sentiment.model import ModelFolder, Scorer
from sentiment_release.support.errors import ReleaseError
from sentiment_release.training.config import TrainingConfig
from sentiment_release.training.dataset import Dataset, load_dataset, parse_lines
from sentiment_release.training.evaluate import metrics_from_scores
from sentiment_release.training.pipeline import split_dataset
from sentiment_release.training.train import train

METRICS = ("accuracy", "f1", "roc_auc")


@dataclass(frozen=True)
class EvaluationSet:
    name: str
    texts: list[str]
    labels: list[int]


@dataclass
class Comparison:
    champion: str | None  # version
    challenger: str
    tolerance: float
    min_gain: float
    # set name -> model ("champion", "challenger") -> metrics
    results: dict[str, dict[str, dict]] = field(default_factory=dict)
    worse: list[str] = field(default_factory=list)
    better: list[str] = field(default_factory=list)

    @property
    def accepted(self) -> bool:
        return not self.worse and (self.champion is None or bool(self.better))

    def document(self) -> dict:
        return {
            "champion": self.champion, "challenger": self.challenger,
            "tolerance": self.tolerance, "min_gain": self.min_gain, "accepted": self.accepted,
            "worse": self.worse, "better": self.better, "results": self.results,
        }  # fmt: skip


def feedback_rows(files: list[Path]) -> list[tuple[str, int]]:
    """Every labelled review of the exported feedback files, oldest first."""
    rows: list[tuple[str, int]] = []
    for path in files:
        found, _ = parse_lines(Path(path).read_text(encoding="utf-8"), Path(path).name)
        rows += found
    return rows


def split_feedback(files: list[Path], recent: int) -> tuple[list[tuple[str, int]], list]:
    """(older rows, to train on; the newest `recent`, to compare on)."""
    rows = feedback_rows(files)
    cut = max(0, len(rows) - recent)
    return rows[:cut], rows[cut:]


def uat_set(expectations: Path) -> EvaluationSet:
    golden = yaml.safe_load(expectations.read_text(encoding="utf-8"))["golden"]
    texts = [*golden["positive"], *golden["negative"]]
    labels = [1] * len(golden["positive"]) + [0] * len(golden["negative"])
    return EvaluationSet("uat", texts, labels)


def held_out_set(base: Dataset, test_size: float, seed: int) -> EvaluationSet:
    split = split_dataset(base, test_size, seed)
    return EvaluationSet("held_out", split.test_texts, split.test_labels)


def evaluation_sets(
    data_dir: Path, sources: list[str], test_size: float, seed: int, expectations: Path,
    recent_feedback: list[tuple[str, int]],
) -> list[EvaluationSet]:  # fmt: skip
    sets = [held_out_set(load_dataset(data_dir, sources), test_size, seed), uat_set(expectations)]
    if recent_feedback:
        sets.append(EvaluationSet("feedback", [text for text, _ in recent_feedback],
                                  [label for _, label in recent_feedback]))  # fmt: skip
    return sets


def metrics_of(scorer: Scorer, evaluation: EvaluationSet) -> dict:
    scores = scorer.scores(evaluation.texts)
    threshold = scorer.metadata.threshold
    if len(set(evaluation.labels)) < 2:  # ROC AUC needs both classes
        predicted = [int(score >= threshold) for score in scores]
        right = sum(p == label for p, label in zip(predicted, evaluation.labels, strict=True))
        return {"accuracy": right / len(scores), "support": len(scores)}
    metrics = metrics_from_scores(scores, evaluation.labels, threshold)
    return {name: metrics[name] for name in (*METRICS, "support")}


def compare(
    champion: Scorer | None,
    challenger: Scorer,
    sets: list[EvaluationSet],
    tolerance: float,
    min_gain: float,
) -> Comparison:
    comparison = Comparison(champion.version if champion else None, challenger.version,
                            tolerance, min_gain)  # fmt: skip
    for evaluation in sets:
        results = {"challenger": metrics_of(challenger, evaluation)}
        if champion is not None:
            results["champion"] = metrics_of(champion, evaluation)
            for metric in METRICS:
                if metric not in results["champion"]:
                    continue
                ours, theirs = results["challenger"][metric], results["champion"][metric]
                if ours < theirs - tolerance:
                    comparison.worse.append(
                        f"{evaluation.name} {metric}: {ours:.4f} against the champion's "
                        f"{theirs:.4f} (tolerance {tolerance})"
                    )
                elif ours >= theirs + min_gain:
                    comparison.better.append(
                        f"{evaluation.name} {metric}: {ours:.4f} against the champion's "
                        f"{theirs:.4f}"
                    )
        comparison.results[evaluation.name] = results
    return comparison


@dataclass(frozen=True)
class Challenge:
    """A trained challenger, in a model folder of its own, and how it compared."""

    comparison: Comparison
    folder: ModelFolder
    version: str


def challenge(
    config: TrainingConfig,
    data_dir: Path,
    champion: Scorer | None,
    revision: str,
    uat_expectations: Path,
    scratch: Path,
) -> Challenge:
    """Trains a challenger on the base data and the older feedback (the newest rows stay
    out: they are the comparison's feedback set) into a model folder under `scratch`, and
    compares it with `champion` on the held-out split, the UAT's golden reviews and that
    newest feedback. What becomes of it (current, pushed, pinned) is the caller's."""
    older, recent = split_feedback(config.dataset.feedback_files,
                                   config.challenger.recent_feedback)  # fmt: skip
    feedback_files = []
    if older:
        feedback_files = [scratch / "feedback-train.txt"]
        feedback_files[0].write_text("".join(f"{text}\t{label}\n" for text, label in older),
                                     encoding="utf-8")  # fmt: skip
    dataset = config.dataset.model_copy(update={"feedback_files": feedback_files})
    folder = ModelFolder(scratch / "models")
    result = train(config.model_copy(update={"dataset": dataset}), data_dir, folder, revision)
    if result.published is None:
        failures = "; ".join(str(failure) for failure in result.gate_failures)
        raise ReleaseError(f"the challenger failed its quality gate: {failures}")
    version = result.published.version
    sets = evaluation_sets(data_dir, config.dataset.sources, config.training.test_size,
                           config.training.seed, uat_expectations, recent)  # fmt: skip
    comparison = compare(champion, Scorer(folder.load(version)), sets,
                         config.challenger.tolerance, config.challenger.min_gain)  # fmt: skip
    return Challenge(comparison, folder, version)


def comparison_markdown(comparison: Comparison) -> str:
    verdict = "ACCEPTED" if comparison.accepted else "REFUSED"
    lines = [
        f"# Challenger {comparison.challenger}: {verdict}",
        "",
        f"Champion: {comparison.champion or 'none pinned'}; tolerance {comparison.tolerance}.",
        "",
        "| set | metric | champion | challenger |",
        "|---|---|---|---|",
    ]
    for name, results in comparison.results.items():
        for metric in (*METRICS, "support"):
            if metric not in results["challenger"]:
                continue
            theirs = results.get("champion", {}).get(metric)
            ours = results["challenger"][metric]
            lines.append(f"| {name} | {metric} | {_figure(theirs)} | {_figure(ours)} |")
    if comparison.worse:
        lines += ["", "Worse than the champion beyond the tolerance:"]
        lines += [f"- {reason}" for reason in comparison.worse]
    if comparison.champion is not None and comparison.better:
        lines += ["", f"Better than the champion by at least {comparison.min_gain}:"]
        lines += [f"- {reason}" for reason in comparison.better]
    elif comparison.champion is not None:
        lines += ["", f"Better than the champion nowhere by {comparison.min_gain} or more: "
                  "nothing to propose."]  # fmt: skip
    return "\n".join(lines) + "\n"


def _figure(value) -> str:
    if value is None:
        return "-"
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def write_report(comparison: Comparison, folder: Path) -> list[Path]:
    """<challenger>.md and .json, and latest.md and .json (what retrain.yml reads)."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name in (comparison.challenger, "latest"):
        table, document = folder / f"{name}.md", folder / f"{name}.json"
        table.write_text(comparison_markdown(comparison), encoding="utf-8")
        document.write_text(json.dumps(comparison.document(), indent=2) + "\n", encoding="utf-8")
        written += [table, document]
    return written
