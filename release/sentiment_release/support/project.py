"""Where the release tooling finds the project's files: one checkout of this repository.

The tooling works on a checkout (config/, environments/, tests/, the Dockerfile), so it
runs from the repository root, as `make` does; SENTIMENT_CONFIG_DIR moves the service's
config (as it does for the service), SENTIMENT_POLICY_FILE the promotion policy and
SENTIMENT_CHAMPION_FILE the champion pin.
"""

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Project:
    root: Path

    @classmethod
    def here(cls) -> "Project":
        return cls(Path.cwd())

    @property
    def config_dir(self) -> Path:
        """The release tooling's configuration: delivery, training, promotion policy."""
        return self.root / "config"

    @property
    def service_config_dir(self) -> Path:
        """The service's own configuration (base.yaml + one file per environment)."""
        override = os.environ.get("SENTIMENT_CONFIG_DIR")
        return Path(override) if override else self.config_dir / "service"

    @property
    def policy_file(self) -> Path:
        override = os.environ.get("SENTIMENT_POLICY_FILE")
        return Path(override) if override else self.config_dir / "promotion.yaml"

    @property
    def champion_file(self) -> Path:
        """The pinned champion model (delivery.champion)."""
        override = os.environ.get("SENTIMENT_CHAMPION_FILE")
        return Path(override) if override else self.config_dir / "champion.yaml"

    @property
    def environments_dir(self) -> Path:
        """The Kubernetes base and one overlay per environment."""
        return self.root / "environments"

    @property
    def dockerfile(self) -> Path:
        return self.root / "Dockerfile"

    def runtime_lock(self, scikit_learn: bool = False) -> Path:
        """What the image installs: the runtime, plus scikit-learn only for a bundle that
        must be unpickled (one without a compiled scorer)."""
        name = "runtime-scikit-learn.lock" if scikit_learn else "runtime.lock"
        return self.root / "requirements" / name
