"""Label names, in one place: those the build writes on the image (and the digest seals),
which promotion reads back to know what an image is, and those on local containers."""

from typing import Any

PREFIX = "io.github.sentiment-mlops"

TITLE = "org.opencontainers.image.title"
DESCRIPTION = "org.opencontainers.image.description"
REVISION = "org.opencontainers.image.revision"
VERSION = "org.opencontainers.image.version"
CREATED = "org.opencontainers.image.created"
SOURCE_TREE = f"{PREFIX}.source-tree"
MODEL_VERSION = f"{PREFIX}.model.version"
MODEL_SHA256 = f"{PREFIX}.model.sha256"
MODEL_DIGEST = f"{PREFIX}.model.digest"
CHALLENGER = f"{PREFIX}.challenger"  # "<version> <digest>"

# What an image vouches for, by the field names of gates.subject.Subject.
SUBJECT = {
    "git_commit": REVISION,
    "source_tree": SOURCE_TREE,
    "model_version": MODEL_VERSION,
    "model_sha256": MODEL_SHA256,
}

# On a local environment's container.
CONTAINER_ENVIRONMENT = f"{PREFIX}.environment"
CONTAINER_IMAGE = f"{PREFIX}.image"
CONTAINER_CONFIG_SHA256 = f"{PREFIX}.config-sha256"


def image_labels(
    revision: str, source_tree: str, version: str, created: str, model_version: str,
    model_sha256: str, model_digest: str | None = None, challenger: Any = None,
) -> dict[str, str]:  # fmt: skip
    """The image's labels; the model's digest in the model repository where it has one,
    and the challenger it carries, if any."""
    return {
        **({MODEL_DIGEST: model_digest} if model_digest else {}),
        **({CHALLENGER: f"{challenger.version} {challenger.digest}"} if challenger else {}),
        TITLE: "sentiment-api",
        DESCRIPTION: "Sentiment model served by Flask under gunicorn",
        REVISION: revision,
        VERSION: version,
        CREATED: created,
        SOURCE_TREE: source_tree,
        MODEL_VERSION: model_version,
        MODEL_SHA256: model_sha256,
    }


def of_image(details: dict) -> dict[str, str]:
    """The labels in `podman|docker image inspect` output (Docker nests them under Config)."""
    return (details.get("Config") or {}).get("Labels") or details.get("Labels") or {}
