"""What a gate vouches for: an image by digest, or (before one exists) a source tree and model.

An image's subject is read from its own labels, which the build writes and the digest
seals, so evidence about a digest is about that image's commit, tree and model too.
"""

from pydantic import BaseModel, ConfigDict

from sentiment.model import BundleMetadata
from sentiment_release.delivery import labels
from sentiment_release.delivery.engine import Engine
from sentiment_release.delivery.errors import DeliveryError
from sentiment_release.delivery.references import DIGEST, Digest, PinnedImage, digest_of
from sentiment_release.support.git import Source


class Subject(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    git_commit: str
    source_tree: str
    model_version: str
    model_sha256: str
    digest: Digest | None = None
    image: PinnedImage | None = None
    # The image's model in the model repository: where its gates take the model they
    # judge it against (sentiment_release/gates/reference.py), never from the image itself.
    model_digest: Digest | None = None

    @property
    def key(self) -> str:
        """What evidence ids are named after: the digest, else the source tree."""
        return self.digest or self.source_tree

    @property
    def committed(self) -> bool:
        return not self.git_commit.endswith("-dirty")


def source_subject(source: Source, model: BundleMetadata) -> Subject:
    return Subject(
        git_commit=source.revision,
        source_tree=source.tree,
        model_version=model.version,
        model_sha256=model.sha256,
    )


def image_subject(engine: Engine, reference: str) -> Subject:
    """The image's subject from its labels (the image is pulled by digest first)."""
    engine.pull(reference)
    found = engine.image_labels(reference)
    missing = [name for name in labels.SUBJECT.values() if found.get(name, "unknown") == "unknown"]
    if missing:
        raise DeliveryError(
            f"image {reference} lacks the labels {', '.join(missing)}: "
            "only images made by `sentiment build` can be promoted"
        )
    fields = {field: found[name] for field, name in labels.SUBJECT.items()}
    model_digest = found.get(labels.MODEL_DIGEST) or None
    if model_digest is not None and not DIGEST.fullmatch(model_digest):
        raise DeliveryError(f"image {reference} names model digest {model_digest[:80]!r}")
    return Subject(
        **fields, digest=digest_of(reference), image=reference, model_digest=model_digest
    )
