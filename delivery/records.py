"""JSON records of builds and deployments under the state directory, written atomically.

Layout:
    <state>/builds/<digest hex>.json    one per pushed image
    <state>/builds/LATEST               digest of the newest build
    <state>/deployments/<env>.json      what `deploy` put in each environment
"""

import json
from pathlib import Path
from typing import Any

from atomic_files import atomic_write
from delivery.errors import DeliveryError


def write_json(path: Path, document: dict[str, Any]) -> None:
    text = json.dumps(document, indent=2, sort_keys=True) + "\n"
    atomic_write(path, text.encode("utf-8"))


def read_json(path: Path) -> dict[str, Any] | None:
    """The record at `path`, None when there is none; a damaged one is an error."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (ValueError, UnicodeDecodeError) as error:
        raise DeliveryError(f"record {path} is damaged ({error}); remove it") from None
    if not isinstance(document, dict):
        raise DeliveryError(f"record {path} is damaged (not an object); remove it")
    return document


class Records:
    def __init__(self, state_dir: Path):
        self.builds = state_dir / "builds"
        self.deployments = state_dir / "deployments"

    def save_build(self, record: dict[str, Any]) -> Path:
        path = self.builds / f"{record['digest'].removeprefix('sha256:')}.json"
        write_json(path, record)
        atomic_write(self.builds / "LATEST", f"{record['digest']}\n".encode())
        return path

    def latest_build(self) -> dict[str, Any] | None:
        try:
            digest = (self.builds / "LATEST").read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            return None
        return self.build(digest)

    def build(self, digest: str) -> dict[str, Any] | None:
        return read_json(self.builds / f"{digest.removeprefix('sha256:')}.json")

    def save_deployment(self, environment: str, record: dict[str, Any]) -> Path:
        path = self.deployments / f"{environment}.json"
        write_json(path, record)
        return path

    def deployment(self, environment: str) -> dict[str, Any] | None:
        return read_json(self.deployments / f"{environment}.json")

    def forget_deployment(self, environment: str) -> None:
        (self.deployments / f"{environment}.json").unlink(missing_ok=True)
