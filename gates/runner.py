"""The gates: which checks each environment runs, and the evidence record each run leaves.

    dev    lint, unit tests, the model quality gate         (before an image exists)
    test   integration tests and a locust load test          (against the test container)
    stage  smoke, UAT, training/serving skew, latency budget (against the stage container)
    prod   smoke                                             (after the prod deploy)

A gate run never raises for a failed check: the failure is in the record it returns.
"""

import getpass
import os
import socket
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from delivery.deploy import config_sha256
from delivery.engine import Engine
from delivery.errors import DeliveryError
from delivery.source import read_source
from gates.checks import CheckResult, check_quality, run_commands, run_pytest, timed
from gates.evidence import EvidenceStore, timestamp, utc_now
from gates.load_test import run_load_test
from gates.skew import SkewError, check_latency, check_skew, held_out_split
from gates.subject import Subject, source_subject
from model_registry import BundleError, ModelRegistry
from settings import ConfigError, Settings, load_settings
from training.data_source import resolve_data_dir
from training.dataset import DatasetError

SMOKE_TESTS = "tests/smoke"


@dataclass(frozen=True)
class GateContext:
    store: EvidenceStore
    config_dir: Path
    # Where the UCI files are, for the skew check (else settings, else download).
    data_dir: Path | None = None


def actor() -> str:
    """Who runs this: the CI actor when there is one, else user@host."""
    if os.environ.get("GITHUB_ACTOR"):
        return f"{os.environ['GITHUB_ACTOR']} (GitHub Actions)"
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return f"{user}@{socket.gethostname()}"


def ci_run_url() -> str | None:
    """The GitHub Actions run whose artifacts hold this gate's reports, if any."""
    parts = [os.environ.get(name) for name in ("GITHUB_SERVER_URL", "GITHUB_REPOSITORY")]
    run = os.environ.get("GITHUB_RUN_ID")
    if not (all(parts) and run):
        return None
    return f"{parts[0]}/{parts[1]}/actions/runs/{run}"


class _GateRun:
    """One gate run: its id and report directory, its checks, its record."""

    def __init__(self, context: GateContext, gate: str, environment: str, subject: Subject):
        self.context = context
        self.gate = gate
        self.environment = environment
        self.subject = subject
        self.started_at = utc_now()
        self.started = time.monotonic()
        self.id = context.store.new_id(gate, subject.key, self.started_at)
        self.reports = context.store.reports_dir(self.id)
        self.checks: list[CheckResult] = []

    def add(self, check: CheckResult) -> CheckResult:
        self.checks.append(check)
        return check

    def finish(self, url: str | None = None) -> dict[str, Any]:
        failures = [f"{c.name}: {message}" for c in self.checks for message in c.failures]
        record = {
            "id": self.id,
            "gate": self.gate,
            "environment": self.environment,
            "subject": self.subject.as_record(),
            "url": url,
            "config_sha256": config_sha256(self.context.config_dir, self.environment),
            "checked_from_commit": read_source().revision,
            "started_at": timestamp(self.started_at),
            "finished_at": timestamp(utc_now()),
            "seconds": round(time.monotonic() - self.started, 1),
            "result": "passed" if self.checks and not failures else "failed",
            "checks": [check.as_record() for check in self.checks],
            "failures": failures,
            "reports_dir": str(self.reports.relative_to(self.context.store.root)),
            "actor": actor(),
            "ci_run": ci_run_url(),
        }
        self.context.store.append(record)
        return record


def run_dev_gate(context: GateContext) -> dict[str, Any]:
    """Lint, unit tests and the quality gate, for the working tree and the current model."""
    settings = _settings("dev", context)
    registry = ModelRegistry(settings.model.registry_dir)
    try:
        bundle = registry.load("current")
    except BundleError as error:
        raise DeliveryError(
            f"the dev gate needs a current model ({error}); run `make train`"
        ) from None
    run = _GateRun(context, "dev", "dev", source_subject(read_source(), bundle.metadata))
    root = context.store.root
    run.add(check_quality(bundle.metadata, settings.training.quality_gate))
    if settings.gate.lint:
        run.add(run_commands("lint", settings.gate.lint, run.reports, root))
    if not settings.gate.unit_tests:
        run.add(_missing("unit", "dev", "gate.unit_tests"))
    else:
        run.add(run_pytest("unit", settings.gate.unit_tests, run.reports, root))
    return run.finish()


def run_environment_gate(
    context: GateContext, environment: str, subject: Subject, url: str, engine: Engine
) -> dict[str, Any]:
    """The gate of test, stage or prod, against the service deployed at `url`."""
    run = _GateRun(context, environment, environment, subject)
    settings = _settings(environment, context)
    root = context.store.root
    if environment == "test":
        gate = settings.gate
        args = [*gate.integration_tests, "--base-url", url]
        if not gate.integration_tests:
            run.add(_missing("integration", environment, "gate.integration_tests"))
        else:
            run.add(run_pytest("integration", args, run.reports, root))
        if gate.load_test is None:
            run.add(_missing("load", environment, "gate.load_test"))
        else:
            run.add(run_load_test(url, gate.load_test, run.reports, root))
    elif environment == "stage":
        run.add(_smoke(run, url))
        if not settings.gate.uat_tests:
            run.add(_missing("uat", environment, "gate.uat_tests"))
        else:
            args = [*settings.gate.uat_tests, "--base-url", url]
            run.add(run_pytest("uat", args, run.reports, root))
        _skew_and_latency(run, settings, url, engine)
    elif environment == "prod":
        run.add(_smoke(run, url))
    else:
        raise DeliveryError(f"{environment} has no gate after a deploy; its gate is `gate dev`")
    return run.finish(url)


def run_smoke_gate(
    context: GateContext, gate: str, environment: str, subject: Subject, url: str
) -> dict[str, Any]:
    """Smoke checks only (after a rollback): the service answers as `subject` should."""
    run = _GateRun(context, gate, environment, subject)
    run.add(_smoke(run, url))
    return run.finish(url)


def deploy_failed(
    context: GateContext, gate: str, environment: str, subject: Subject, error: DeliveryError
) -> dict[str, Any]:
    """The record of a gate that could not start because the deploy failed."""
    run = _GateRun(context, gate, environment, subject)
    check = CheckResult("deploy")
    check.fail(str(error))
    run.add(check)
    return run.finish()


def _smoke(run: _GateRun, url: str) -> CheckResult:
    args = [
        SMOKE_TESTS, "--base-url", url,
        "--expected-model-sha256", run.subject.model_sha256,
        "--expected-environment", run.environment,
    ]  # fmt: skip
    return run_pytest("smoke", args, run.reports, run.context.store.root)


def _skew_and_latency(run: _GateRun, settings: Settings, url: str, engine: Engine) -> None:
    gate = settings.gate
    if gate.skew is None or gate.latency is None:
        missing = "gate.skew" if gate.skew is None else "gate.latency"
        run.add(_missing("skew", run.environment, missing))
        return
    with tempfile.TemporaryDirectory() as scratch:
        prepared = CheckResult("skew")
        try:
            with timed(prepared):
                bundle = _bundle_in_image(engine, run.subject, Path(scratch))
                data_dir = resolve_data_dir(
                    run.context.data_dir or settings.data_dir,
                    str(settings.dataset.url),
                    settings.dataset.cache_dir,
                    settings.dataset.download_timeout_seconds,
                )
                split = held_out_split(bundle, data_dir)
        except (DeliveryError, BundleError, DatasetError, SkewError, OSError) as error:
            prepared.fail(f"cannot check skew: {error}")
            run.add(prepared)
            return
        skew = run.add(check_skew(url, bundle, split, gate.skew, settings.service.max_batch_size))
        skew.seconds += prepared.seconds
    run.add(check_latency(url, split.test_texts, gate.latency))


def _bundle_in_image(engine: Engine, subject: Subject, scratch: Path):
    """The bundle baked into the image, read back and verified against its sha256."""
    if subject.image is None:
        raise DeliveryError("the skew check needs an image")
    engine.copy_from_image(subject.image, "/app/models", scratch / "models")
    bundle = ModelRegistry(scratch / "models").load("current")
    if bundle.metadata.sha256 != subject.model_sha256:
        raise DeliveryError(
            f"the image holds model {bundle.metadata.sha256[:12]}..., its label says "
            f"{subject.model_sha256[:12]}..."
        )
    return bundle


def _missing(name: str, environment: str, key: str) -> CheckResult:
    check = CheckResult(name)
    check.fail(f"config/{environment}.yaml sets no {key}, so this check cannot run")
    return check


def _settings(environment: str, context: GateContext) -> Settings:
    try:
        return load_settings(environment, config_dir=context.config_dir)
    except ConfigError as error:
        raise DeliveryError(str(error)) from None
