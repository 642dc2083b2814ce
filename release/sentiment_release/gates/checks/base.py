"""What a check is: a named kind with its own options (thresholds, paths), run against a
gate's context, returning a result that says what it measured and what fell short.

A check never raises for a failed check: a failure is in the result it returns.
"""

import os
import re
import tempfile
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, ValidationError

from sentiment.model import BundleError, LoadedBundle
from sentiment.serving.settings import ConfigError, Settings, load_settings
from sentiment_release.gates.isolation import Isolation
from sentiment_release.gates.subject import Subject
from sentiment_release.support.errors import ReleaseError
from sentiment_release.support.process import run_logged
from sentiment_release.support.project import Project

# A check's name becomes part of its report files' names.
CHECK_NAME = re.compile(r"[a-z][a-z0-9_-]{0,40}")
# The variable a suite or locust run finds the gates' API key in.
API_KEY_VARIABLE = "SENTIMENT_API_KEY"
# The gate runner's own name for a deploy that failed before any check could run.
RESERVED_NAMES = frozenset({"deploy"})


class CheckOptions(BaseModel):
    """A check's options as config/promotion.yaml gives them: unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True)


@dataclass
class CheckResult:
    name: str
    passed: bool = True
    seconds: float = 0.0
    figures: dict[str, Any] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    # Report files, relative to the evidence directory.
    reports: list[str] = field(default_factory=list)

    def fail(self, message: str) -> None:
        self.passed = False
        self.failures.append(message)


@dataclass(frozen=True)
class Baseline:
    """What a check of this gate measured on the release now in the release environment
    (prod): its figures, the evidence that holds them, and which release that is."""

    figures: dict[str, Any]
    evidence: str
    release: str
    # The check's kind and options then: a figure measured otherwise is no baseline.
    kind: str | None = None
    options: dict[str, Any] = field(default_factory=dict)


class GateContext:
    """What a check can ask of the gate it runs in. The costly answers (the bundle, the
    data, the service's settings) are fetched on first use and shared by the checks."""

    def __init__(
        self,
        *,
        environment: str,
        subject: Subject,
        url: str | None,
        reports: Path,
        evidence_root: Path,
        project: Project,
        bundle: Callable[[], LoadedBundle],
        data_dir: Callable[[], Path],
        isolation: Isolation,
        api_key: Callable[[str], str | None] = lambda environment: None,
        baseline: Callable[[str], Baseline | None] = lambda check: None,
    ):
        self.environment = environment
        self.subject = subject
        self.url = url
        self.reports = reports
        self.evidence_root = evidence_root
        self.project = project
        self._bundle = bundle
        self._data_dir = data_dir
        self.isolation = isolation
        self._api_key = api_key
        self._baseline = baseline
        self._shared: dict[str, Any] = {}

    @cached_property
    def bundle(self) -> LoadedBundle:
        """The model the subject names, read back and verified against its sha256."""
        return self._bundle()

    @cached_property
    def data_dir(self) -> Path:
        """The training data (the skew and latency checks rebuild the held-out split)."""
        return self._data_dir()

    @cached_property
    def service_settings(self) -> Settings:
        """The service's settings in this environment (its limits, say)."""
        return load_settings(self.environment, self.project.service_config_dir)

    @cached_property
    def api_key(self) -> str | None:
        """The gates' own key where the service asks for one (auth.required), else None."""
        if not self.service_settings.auth.required:
            return None
        key = self._api_key(self.environment)
        if key is None:
            raise ReleaseError(
                f"{self.environment} requires API keys and the gate has none: `make api-keys` "
                "(on GitHub: the environment's API_KEY_HASHES and GATE_API_KEY secrets)"
            )
        return key

    def baseline(self, check: str) -> Baseline | None:
        """The figures the check named `check` recorded for the current release, if any
        (a promotion looks them up; a gate run on its own has none)."""
        return self._baseline(check)

    @property
    def api_headers(self) -> dict[str, str]:
        """What a request to the service carries to be let in."""
        return {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}

    @property
    def api_key_env(self) -> dict[str, str]:
        """The key for a test suite or locust run (tests/conftest.py reads it): in their
        environment, never in an argument list, which the gate's logs show."""
        return {API_KEY_VARIABLE: self.api_key} if self.api_key else {}

    def run(
        self,
        argv: Sequence[str],
        log: Path,
        timeout: float,
        env: Mapping[str, str] | None = None,
    ) -> int | None:
        """Runs a check's process from the repository root, output appended to `log`: in its
        sandbox, with the allowed environment and `env` only (sentiment_release/gates/isolation.py).
        Its exit code, None when it timed out."""
        readable = [self.project.root]
        if os.environ.get("SENTIMENT_DATA_DIR"):
            readable.append(Path(os.environ["SENTIMENT_DATA_DIR"]))
        with tempfile.TemporaryDirectory(prefix="check-") as scratch:
            command = self.isolation.command(argv, [self.reports, Path(scratch)], readable)
            return run_logged(
                command, log, cwd=self.project.root, timeout=timeout,
                env=self.isolation.environment(Path(scratch), env), inherit_environment=False,
            )  # fmt: skip

    def shared(self, key: str, make: Callable[[], Any]) -> Any:
        """A value made once per gate run and shared by the checks that need it."""
        if key not in self._shared:
            self._shared[key] = make()
        return self._shared[key]

    def report(self, path: Path) -> str:
        """How a report file is recorded: relative to the evidence directory."""
        return str(path.relative_to(self.evidence_root))

    @property
    def service_url(self) -> str:
        if self.url is None:
            raise ReleaseError("this check needs a deployed service, and the gate has none")
        return self.url


class Check:
    """A kind of check. Subclasses set `kind`, their `Options`, and implement `check`."""

    kind: ClassVar[str]
    Options: ClassVar[type[CheckOptions]] = CheckOptions
    # True: it talks to the deployed service, so it cannot run before an image exists
    # (a kind may decide by its options: a property in its class).
    needs_service = False

    def __init__(self, name: str, options: CheckOptions):
        self.name = name
        self.options = options

    def run(self, context: GateContext) -> CheckResult:
        """Never raises: whatever goes wrong is a failed check, so the gate still records
        its evidence and the promoter still acts on it (a rollback, say)."""
        result = CheckResult(self.name)
        started = time.monotonic()
        try:
            self.check(context, result)
        except (ReleaseError, BundleError, ConfigError, OSError) as error:
            result.fail(f"could not run: {error}")
        except Exception as error:  # a defect of the check or of what it read
            where = "".join(traceback.format_exception(error)[-3:]).strip()
            result.fail(f"crashed: {type(error).__name__}: {error}\n{where}")
        finally:
            result.seconds = time.monotonic() - started
        return result

    def check(self, context: GateContext, result: CheckResult) -> None:
        raise NotImplementedError

    @classmethod
    def summary(cls, name: str, figures: dict[str, Any]) -> str:
        """The key figures in a few words, for tables and job summaries."""
        return name


CHECKS: dict[str, type[Check]] = {}


def register(cls: type[Check]) -> type[Check]:
    CHECKS[cls.kind] = cls
    return cls


def configure(name: str, entry: dict[str, Any] | None) -> Check:
    """The check `name` of a gate, from its policy entry: `check:` names the kind (the
    name itself by default), the other keys are that kind's options."""
    if not CHECK_NAME.fullmatch(name) or name in RESERVED_NAMES:
        raise ValueError(f"{name!r} is not a check name (lower-case letters, digits, - and _; "
                         f"not {', '.join(sorted(RESERVED_NAMES))})")  # fmt: skip
    if entry is not None and not isinstance(entry, dict):
        raise ValueError(f"the options of {name!r} must be a mapping")
    entry = dict(entry or {})
    kind = entry.pop("check", name)
    if not isinstance(kind, str):
        raise ValueError(f"check: must name a kind, not {kind!r}")
    cls = CHECKS.get(kind)
    if cls is None:
        raise ValueError(f"no check of kind {kind!r} (kinds: {', '.join(sorted(CHECKS))})")
    try:
        options = cls.Options.model_validate(entry)
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in item['loc']) or kind}: {item['msg']}"
            for item in error.errors(include_url=False)
        )
        raise ValueError(f"{kind} options: {problems}") from None
    return cls(name, options)
