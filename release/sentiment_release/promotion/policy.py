"""The promotion policy (config/promotion.yaml): the environments in promotion order and,
for each, its local port, its GitHub environment, its gate's checks with their options,
whether it takes only release-tagged images, and what a failed gate does there.

Everything that knows "which environments, in which order, checked how" reads this:
the rules, the gate runner, the promoter, the CLI's choices, the local ports and the
workflows' checks. The first environment is special in one way: its gate runs on the
source tree and the current model before an image exists; every later one gates the
image deployed there, and takes an image only when the one before passed it.
"""

from functools import cached_property
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from sentiment.serving.settings.schema import EnvironmentName
from sentiment_release.gates.checks import Check, configure
from sentiment_release.gates.evidence import ROLLBACK_GATE
from sentiment_release.support.config import load_yaml_settings
from sentiment_release.support.errors import ReleaseError


class PolicyError(ReleaseError):
    pass


def _checks(where: str, entries: dict[str, dict[str, Any] | None]) -> list[Check]:
    checks = []
    for name, entry in entries.items():
        try:
            checks.append(configure(name, entry))
        except ValueError as error:
            raise ValueError(f"{where} check {name!r}: {error}") from None
    return checks


class EnvironmentPolicy(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: EnvironmentName
    # The local container's port on 127.0.0.1 (deploy.target local).
    port: int = Field(ge=1024, le=65535)
    # The GitHub environment whose secrets and reviewers guard this one's jobs.
    github_environment: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    # Only an image whose commit carries a release tag (release_tag_pattern) comes here.
    requires_release_tag: bool = False
    # keep: the image that failed stays, marked GATE FAILED; rollback: the previous
    # release is put back at once.
    on_gate_failure: Literal["keep", "rollback"] = "keep"
    # Check name -> options; `check:` names the kind when it is not the name.
    checks: dict[str, dict[str, Any] | None] = Field(min_length=1)

    @cached_property
    def gate(self) -> list[Check]:
        return _checks(f"environment {self.name}", self.checks)

    @model_validator(mode="after")
    def _checks_are_valid(self) -> "EnvironmentPolicy":
        if self.name == ROLLBACK_GATE:
            raise ValueError(f"{ROLLBACK_GATE!r} names the gate after a rollback")
        self.gate  # noqa: B018  (configures every check, so a bad one fails here)
        return self


class Policy(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    release_tag_pattern: str = Field(min_length=1)
    # Release tags count only on commits of this branch (the remote's or the local one).
    release_branch: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._/-]*$")
    lock_timeout_seconds: float = Field(ge=0, le=24 * 3600)
    # Evidence and ledgers outlive the run that made them on this git branch.
    state_branch: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._/-]*$")
    state_remote: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    # What checks an image put back by a rollback.
    rollback_checks: dict[str, dict[str, Any] | None] = Field(min_length=1)
    environments: list[EnvironmentPolicy] = Field(min_length=2)

    @cached_property
    def rollback_gate(self) -> list[Check]:
        return _checks("rollback_checks", self.rollback_checks)

    @model_validator(mode="after")
    def _consistent(self) -> "Policy":
        for field, values in (
            ("name", [e.name for e in self.environments]),
            ("port", [e.port for e in self.environments]),
            ("github_environment", [e.github_environment for e in self.environments]),
        ):
            repeated = sorted({str(v) for v in values if values.count(v) > 1})
            if repeated:
                raise ValueError(f"two environments share the {field} {', '.join(repeated)}")
        if self.state_branch == self.release_branch:
            raise ValueError(f"state_branch {self.state_branch!r} is the release branch: "
                             "evidence needs a branch of its own")  # fmt: skip
        first = self.environments[0]
        before_an_image = [check.name for check in first.gate if check.needs_service]
        if before_an_image:
            raise ValueError(
                f"{first.name}'s gate runs before an image exists, so it cannot run "
                f"{', '.join(before_an_image)} (they need a deployed service)"
            )
        if first.requires_release_tag or first.on_gate_failure != "keep":
            raise ValueError(f"{first.name} is deployed, never promoted to: it takes no "
                             "release tag and has nothing to roll back")  # fmt: skip
        # A gate after a deploy that never asks the deployed service proves nothing about it.
        blind = [e.name for e in self.promoted if not any(c.needs_service for c in e.gate)]
        if not any(check.needs_service for check in self.rollback_gate):
            blind.append("rollback_checks")
        if blind:
            raise ValueError(
                f"{', '.join(blind)}: a gate after a deploy needs a check of the deployed "
                "service (smoke, load, skew, latency, or a pytest suite with needs_service)"
            )
        return self

    @property
    def names(self) -> list[str]:
        return [environment.name for environment in self.environments]

    @property
    def first(self) -> EnvironmentPolicy:
        """The environment whose gate runs before an image exists."""
        return self.environments[0]

    @property
    def promoted(self) -> list[EnvironmentPolicy]:
        """The environments an image is promoted to, in order."""
        return self.environments[1:]

    @property
    def promoted_on_merge(self) -> list[EnvironmentPolicy]:
        """What CI promotes a merged commit to by itself: every environment up to the
        first that takes only release-tagged images."""
        found = []
        for environment in self.promoted:
            if environment.requires_release_tag:
                break
            found.append(environment)
        return found

    @property
    def ports(self) -> dict[str, int]:
        return {environment.name: environment.port for environment in self.environments}

    def environment(self, name: str) -> EnvironmentPolicy:
        for environment in self.environments:
            if environment.name == name:
                return environment
        raise PolicyError(f"{name!r} is not an environment (environments: {', '.join(self.names)})")

    def previous(self, name: str) -> EnvironmentPolicy | None:
        """The environment an image comes from on its way to `name`."""
        index = self.names.index(self.environment(name).name)
        return self.environments[index - 1] if index else None

    def release_environment(self) -> EnvironmentPolicy:
        """Where a release tag takes an image: the first that requires one."""
        for environment in self.promoted:
            if environment.requires_release_tag:
                return environment
        raise PolicyError("no environment requires a release tag: nothing is released by tag")


def load_policy(path: Path) -> Policy:
    try:
        return load_yaml_settings(Policy, path)
    except ReleaseError as error:
        raise PolicyError(str(error)) from None
