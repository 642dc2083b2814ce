"""Docker or Podman, found by asking each one to answer, and the few commands we need.

A binary on PATH is not an engine: a Docker CLI without a daemon fails `docker info`.
"""

import json
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from sentiment_release.delivery.errors import (
    ContainerStartError,
    EngineCommandError,
    ImageNotFoundError,
    NoEngineError,
)
from sentiment_release.delivery.labels import of_image
from sentiment_release.support.process import CommandError, run

ENGINES = ("podman", "docker")
INFO_TIMEOUT_SECONDS = 30
# gunicorn's graceful_timeout_seconds plus margin: in-flight requests finish first.
STOP_TIMEOUT_SECONDS = 30
DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
# What the engines print when a reference is unknown to the registry or the host.
NOT_FOUND = re.compile(
    r"manifest unknown|not found|not known|no such (image|container|object)|does not exist",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Container:
    name: str
    state: str  # running, exited, created ...
    labels: dict[str, str]


@dataclass(frozen=True)
class Engine:
    name: str
    binary: str
    tls_verify: bool = True

    def run(self, *args: str, timeout: float | None = 600) -> str:
        """Runs one engine command; its stdout, or EngineCommandError with its output."""
        try:
            return run([self.binary, *args], timeout=timeout).stdout
        except CommandError as error:
            raise EngineCommandError(str(error)) from None

    def _registry_flags(self) -> list[str]:
        # Podman wants plain HTTP spelled out; Docker allows it for 127.0.0.0/8 by itself.
        return [] if self.name == "docker" else [f"--tls-verify={str(self.tls_verify).lower()}"]

    def build(
        self, context: Path, tag: str, build_args: dict[str, str], labels: dict[str, str]
    ) -> None:
        args = ["build", "--tag", tag]
        if self.name == "podman":
            args += ["--format", "docker"]  # the OCI format drops HEALTHCHECK
        for key, value in build_args.items():
            args += ["--build-arg", f"{key}={value}"]
        for key, value in labels.items():
            args += ["--label", f"{key}={value}"]
        self.run(*args, str(context), timeout=1800)

    def push(self, tag: str, digest_file: Path) -> str:
        """Pushes `tag`; the digest the registry reports for it."""
        if self.name == "podman":
            self.run("push", *self._registry_flags(), "--digestfile", str(digest_file), tag)
            text = digest_file.read_text(encoding="utf-8")
        else:
            text = self.run("push", tag)
        found = DIGEST.findall(text)
        if not found:
            raise EngineCommandError(f"pushing {tag}: the registry reported no digest")
        return found[-1]

    def pull(self, reference: str) -> None:
        try:
            self.run("pull", "--quiet", *self._registry_flags(), reference)
        except EngineCommandError as error:
            if NOT_FOUND.search(str(error)):
                raise ImageNotFoundError(
                    f"image {reference} is not in the registry ({_last_line(error)})"
                ) from None
            raise

    def image_inspect(self, reference: str) -> dict:
        try:
            return self._inspect("image", reference)
        except EngineCommandError as error:
            if NOT_FOUND.search(str(error)):
                raise ImageNotFoundError(f"image {reference} is not on this host") from None
            raise

    def image_labels(self, reference: str) -> dict[str, str]:
        return of_image(self.image_inspect(reference))

    def _inspect(self, kind: str, name: str) -> dict:
        output = self.run(kind, "inspect", name)
        try:
            return json.loads(output)[0]
        except (ValueError, IndexError, KeyError):
            raise EngineCommandError(
                f"`{self.name} {kind} inspect {name}` gave no JSON: {output[:200]!r}"
            ) from None

    def start_container(self, name: str, image: str, options: list[str]) -> None:
        args = ["run", "--detach", "--name", name, "--init", *options]
        if self.name == "podman":
            # Podman has no timer to run HEALTHCHECKs without systemd, and prints errors
            # trying; readiness is polled over HTTP instead.
            args += ["--no-healthcheck"]
        try:
            self.run(*args, image)
        except EngineCommandError as error:
            self.remove_container(name)
            raise ContainerStartError(
                f"{self.name} could not run container {name}: {error}\n"
                "The engine answers but cannot run containers: check its runtime "
                "(podman: runtime and default_ulimits in /etc/containers/containers.conf)."
            ) from None

    def container(self, name: str) -> Container | None:
        try:
            details = self._inspect("container", name)
        except EngineCommandError as error:
            if NOT_FOUND.search(str(error)):
                return None
            raise
        return Container(
            name=name,
            state=details["State"]["Status"],
            labels=details["Config"].get("Labels") or {},
        )

    def remove_container(self, name: str) -> bool:
        """Stops (gracefully, SIGTERM first) and removes `name`; False if there was none."""
        if self.container(name) is None:
            return False
        self.run(
            "stop", "--time", str(STOP_TIMEOUT_SECONDS), name, timeout=STOP_TIMEOUT_SECONDS + 30
        )
        self.run("rm", "--force", name, timeout=60)
        return True

    def copy_from_image(self, reference: str, source: str, target: Path) -> None:
        """Copies `source` out of the image (through a container that never starts)."""
        container_id = self.run("create", reference, timeout=120).strip()
        try:
            self.run("cp", f"{container_id}:{source}", str(target), timeout=120)
        finally:
            self.run("rm", "--force", container_id, timeout=60)

    def logs(self, name: str, tail: int) -> str:
        try:
            done = run([self.binary, "logs", "--tail", str(tail), name], timeout=30, check=False)
        except CommandError as error:
            return f"(no logs: {error})"
        return (done.stdout + done.stderr).strip()


def detect_engine(choice: str, tls_verify: bool = True) -> Engine:
    """The engine to use: `choice`, or with "auto" the first of podman, docker that answers."""
    candidates = ENGINES if choice == "auto" else (choice,)
    reasons = []
    for name in candidates:
        binary = shutil.which(name)
        if binary is None:
            reasons.append(f"{name}: not installed")
            continue
        try:
            done = run([binary, "info"], timeout=INFO_TIMEOUT_SECONDS, check=False)
        except CommandError as error:
            reasons.append(f"{name}: {error}")
            continue
        if done.ok:
            return Engine(name, binary, tls_verify)
        reasons.append(f"{name}: `{name} info` failed: {done.output.splitlines()[-1]}")
    raise NoEngineError(
        "no container engine answers ("
        + "; ".join(reasons)
        + "). Install Podman (scripts/install-podman.sh) or start Docker, "
        "or choose one with DELIVERY_ENGINE=podman|docker."
    )


def _last_line(error: Exception) -> str:
    lines = [line for line in str(error).splitlines() if line.strip()]
    return lines[-1].strip()[:300] if lines else "no message"
