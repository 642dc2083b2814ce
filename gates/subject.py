"""What a gate vouches for: an image by digest, or (before one exists) a source tree and model.

An image's subject is read from its own labels, which the build writes and the digest
seals, so evidence about a digest is about that image's commit, tree and model too.
"""

from dataclasses import asdict, dataclass
from typing import Any

from delivery.engine import Engine
from delivery.errors import DeliveryError
from delivery.references import digest_of
from delivery.source import Source
from model_registry import BundleMetadata

LABELS = {
    "git_commit": "org.opencontainers.image.revision",
    "source_tree": "io.github.sentiment-mlops.source-tree",
    "model_version": "io.github.sentiment-mlops.model.version",
    "model_sha256": "io.github.sentiment-mlops.model.sha256",
}


@dataclass(frozen=True)
class Subject:
    git_commit: str
    source_tree: str
    model_version: str
    model_sha256: str
    digest: str | None = None
    image: str | None = None

    @property
    def key(self) -> str:
        """What evidence ids are named after: the digest, else the source tree."""
        return self.digest or self.source_tree

    @property
    def committed(self) -> bool:
        return not self.git_commit.endswith("-dirty")

    def as_record(self) -> dict[str, Any]:
        return asdict(self)


def source_subject(source: Source, model: BundleMetadata) -> Subject:
    return Subject(source.revision, source.tree, model.version, model.sha256)


def image_subject(engine: Engine, reference: str) -> Subject:
    """The image's subject from its labels (the image is pulled by digest first)."""
    engine.pull(reference)
    details = engine.image_inspect(reference)
    labels = (details.get("Config") or {}).get("Labels") or details.get("Labels") or {}
    missing = [label for label in LABELS.values() if labels.get(label, "unknown") == "unknown"]
    if missing:
        raise DeliveryError(
            f"image {reference} lacks the labels {', '.join(missing)}: "
            "only images made by `sentiment build` can be promoted"
        )
    fields = {field: labels[label] for field, label in LABELS.items()}
    return Subject(**fields, digest=digest_of(reference), image=reference)
