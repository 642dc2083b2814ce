"""One load test: a profile's locust run against a service, kept and compared.

The clients' key is passed as the gates pass theirs (SENTIMENT_API_KEY in locust's
environment, never on its command line). Reviews are the dataset's, as they are, so
requests have real lengths; without the dataset (no copy, no internet) the fixture
sentences stand in, and the summary says so. A customer-facing environment (prod) is
refused unless the caller confirms it by name, whether it was named or only reached
through its URL (the service says which environment it is); so is a URL whose service
does not say, or names an environment this repository does not know.
"""

import json
import secrets
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import requests

from sentiment.serving.settings import ConfigError
from sentiment_release.delivery.references import digest_of
from sentiment_release.gates.checks.base import API_KEY_VARIABLE
from sentiment_release.gates.checks.load import locust_command
from sentiment_release.gates.evidence_store import EvidenceStore
from sentiment_release.loadtest.figures import run_figures
from sentiment_release.loadtest.profiles import LoadTestConfig
from sentiment_release.loadtest.report import markdown
from sentiment_release.loadtest.runs import SUMMARY, LoadTestRuns, LoadTestSummary, Previous
from sentiment_release.support.clock import utc_now
from sentiment_release.support.errors import ReleaseError
from sentiment_release.support.process import run_logged, tail

if TYPE_CHECKING:
    from sentiment.serving.settings import Settings
    from sentiment_release.delivery.config import DeliverySettings
    from sentiment_release.support.project import Project
    from sentiment_release.training import TrainingConfig

# Locust's start-up and shutdown on top of the profile's stages.
OVERHEAD_SECONDS = 120
# The web UI stays this long after the run, for a last look at its charts.
UI_LINGER_SECONDS = 60
GATE_CHECKS = ("load", "capacity")


@dataclass(frozen=True)
class Target:
    name: str
    url: str
    api_key: str | None
    environment: str | None
    # The image deployed as `environment` on this machine, if that is what is tested.
    image: str | None


@dataclass(frozen=True)
class WebUI:
    """locust's web UI on 127.0.0.1:`port`, under a random path."""

    port: int
    base_path: str = field(default_factory=lambda: "/" + secrets.token_urlsafe(16))

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{self.base_path}/"


@dataclass(frozen=True)
class Finished:
    directory: Path
    summary: LoadTestSummary
    previous: Previous | None
    report: str

    @property
    def passed(self) -> bool:
        return not self.summary.breaches


class LoadTestSpace(Protocol):
    """What a load test needs of the project: the CLI's workspace (the composition root)
    gives it."""

    project: "Project"
    delivery: "DeliverySettings"
    training: "TrainingConfig"
    data_dir_override: Path | None
    store: EvidenceStore

    def service_settings(self, environment: str | None = None) -> "Settings": ...


class LoadTester:
    def __init__(self, space: LoadTestSpace, config: LoadTestConfig, log: Callable[[str], None]):
        self.space = space
        self.config = config
        self.log = log
        self.runs = LoadTestRuns(space.delivery.state_dir / "loadtests")

    def served(self, target: Target) -> dict[str, Any] | None:
        """The service's /v1/model answer (its environment and model), if it gives one."""
        headers = {"Authorization": f"Bearer {target.api_key}"} if target.api_key else {}
        try:
            answer = requests.get(f"{target.url}/v1/model", headers=headers, timeout=5)
            document = answer.json() if answer.status_code == 200 else None
        except (requests.RequestException, ValueError):
            return None
        return document if isinstance(document, dict) else None

    def check_allowed(self, target: Target, served: dict[str, Any] | None, confirm: str | None):
        """Refuses a customer-facing environment unless `confirm` is its name; and, failing
        closed, a target whose environment cannot be told, unless `confirm` is its name."""
        service = (served or {}).get("service")
        said = service.get("environment") if isinstance(service, dict) else None
        said = str(said) if said else None
        if target.environment and said and said != target.environment:
            raise ReleaseError(f"{target.url} says it is {said}, not {target.environment}")
        environment = target.environment or said
        if environment is None:
            if confirm != target.name:
                raise ReleaseError(
                    f"cannot tell which environment {target.url} is (its /v1/model did not "
                    f"say: no key, or not this API?): name it with --env ENV, or confirm it "
                    f"as it is with --confirm {target.name}"
                )
            return
        try:
            customer_facing = self.space.service_settings(environment).service.customer_facing
        except (ConfigError, ReleaseError):
            customer_facing = True  # not one of this repository's: nothing says it is not
        if customer_facing and confirm != environment:
            raise ReleaseError(
                f"{environment} is customer-facing (or not one of this repository's): a load "
                f"test there slows its clients down. Confirm it by name to run it anyway: "
                f"--confirm {environment} (make loadtest ... CONFIRM={environment})"
            )

    def run(
        self,
        target: Target,
        profile_name: str,
        confirm: str | None = None,
        ui: "WebUI | None" = None,
    ) -> Finished:
        """Runs the profile (headless, or with locust's web UI), keeps the run, and
        compares it."""
        profile = self.config.profiles[profile_name]
        served = self.served(target)
        self.check_allowed(target, served, confirm)
        with tempfile.TemporaryDirectory(prefix="loadtest-") as scratch:
            reviews_file, reviews = self._reviews(Path(scratch))
            started = utc_now()
            directory = self.runs.new_run(target.name, profile_name, started)
            prefix, log = directory / "locust", directory / "locust.log"
            user_class = profile.user_class or self.config.user_class
            env = {
                "SENTIMENT_LOADTEST_STAGES": json.dumps([s.model_dump() for s in profile.stages]),
                "SENTIMENT_LOADTEST_REVIEWS": str(reviews_file or ""),
                **({API_KEY_VARIABLE: target.api_key} if target.api_key else {}),
            }
            argv = locust_command(
                f"{self.config.locustfile},{self.config.shapes}",
                target.url,
                prefix,
                directory / "report.html",
                user_class,
                ["--exit-code-on-error", "0", *self._mode(ui)],
            )
            self.log(f"{profile_name}: {profile.seconds} s against {target.url}, {reviews}; "
                     f"reports in {directory}")  # fmt: skip
            seconds = profile.seconds + OVERHEAD_SECONDS + (UI_LINGER_SECONDS if ui else 0)
            code = run_logged(argv, log, cwd=self.space.project.root, env=env, timeout=seconds)
        if not Path(f"{prefix}_stats.csv").exists():
            raise ReleaseError(f"locust wrote no statistics (exit {code}); {log}:\n{tail(log)}")
        figures = run_figures(prefix, profile)
        summary = LoadTestSummary(
            target=target.name, url=target.url, environment=target.environment,
            image=target.image, model_version=_model_version(served), profile=profile_name,
            description=profile.description, stages=[s.model_dump() for s in profile.stages],
            user_class=user_class, reviews=reviews, started_at=started,
            seconds=round(figures["seconds"] or (utc_now() - started).total_seconds(), 1),
            overall=figures["overall"],
            endpoints=figures["endpoints"], stage_figures=figures["stages"],
            breaches=profile.breaches(figures["overall"]) + _crashed(code),
            gate_figures=gate_figures(self.space.store, target.image),
        )  # fmt: skip
        previous = self.runs.previous(summary, directory)
        if previous is not None:
            summary = summary.model_copy(update={"previous": previous[0].name})
        (directory / SUMMARY).write_text(summary.to_json() + "\n", encoding="utf-8")
        report = markdown(summary, previous)
        (directory / "summary.md").write_text(report, encoding="utf-8")
        return Finished(directory, summary, previous, report)

    def _mode(self, ui: "WebUI | None") -> list[str]:
        if ui is None:
            return ["--headless", "--only-summary"]
        # Under a path nobody can guess: locust's UI takes plain form posts (a new host,
        # a stop) with no login, which any web page open beside it could send.
        return ["--web-host", "127.0.0.1", "--web-port", str(ui.port), "--web-base-path",
                ui.base_path, "--autostart", "--autoquit", str(UI_LINGER_SECONDS)]  # fmt: skip

    def _reviews(self, scratch: Path) -> tuple[Path | None, str]:
        """A file of the dataset's reviews and what they are; (None, why) without it."""
        from sentiment_release.training import data_dir_for, load_dataset

        training = self.space.training
        try:
            data_dir = data_dir_for(training, self.space.data_dir_override)
            texts = load_dataset(data_dir, training.dataset.sources, skip_bad_lines=True).texts
        except (ReleaseError, OSError) as error:
            self.log(f"the dataset is not available ({error}): fixture sentences stand in")
            return None, "fixture sentences (the dataset was not available)"
        path = scratch / "reviews.txt"
        path.write_text("\n".join(texts) + "\n", encoding="utf-8")
        return path, f"{len(texts):,} reviews of the dataset"


def _model_version(served: dict[str, Any] | None) -> str | None:
    model = (served or {}).get("model")
    return str(model.get("version")) if isinstance(model, dict) else None


def _crashed(code: int | None) -> list[str]:
    if code is None:
        return ["locust did not finish in time and was stopped"]
    return [] if code == 0 else [f"locust exited {code}"]


def gate_figures(store: EvidenceStore, image: str | None) -> list[dict[str, Any]]:
    """The newest figures of each locust check (load, capacity) a gate measured on
    `image`: what the release was promoted on."""
    if image is None:
        return []
    digest = digest_of(image)
    found: dict[str, dict[str, Any]] = {}
    for record in reversed(store.records()):
        if record.subject.digest != digest:
            continue
        for check in record.checks:
            kind = check.check or check.name
            if kind in GATE_CHECKS and kind not in found and "rps" in check.figures:
                found[kind] = {"label": f"{record.gate} gate {check.name}",
                               "figures": check.figures}  # fmt: skip
    return [found[kind] for kind in GATE_CHECKS if kind in found]
