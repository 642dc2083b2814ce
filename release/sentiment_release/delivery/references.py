"""Image references. Deployments take a registry digest, never a tag: a tag can move."""

import re
from typing import Annotated

from pydantic import Field

from sentiment_release.delivery.errors import DeliveryError

# The pieces, for the patterns here and in sentiment_release/delivery/base_image.py.
NAME = r"(?P<name>[a-z0-9.-]+(:[0-9]+)?(/[a-z0-9._-]+)+)"
TAG = r"[A-Za-z0-9_][A-Za-z0-9._-]{0,127}"  # what an OCI registry accepts as a tag
SHA256_DIGEST = r"sha256:[0-9a-f]{64}"

DIGEST = re.compile(rf"^{SHA256_DIGEST}$")
PINNED = re.compile(rf"^{NAME}@(?P<digest>{SHA256_DIGEST})$")
OCI_TAG = re.compile(rf"^{TAG}$")
# In typed records: a digest, and an image pinned by one (never a tag, never an option).
Digest = Annotated[str, Field(pattern=DIGEST.pattern)]
PinnedImage = Annotated[str, Field(pattern=PINNED.pattern)]


def pinned_reference(image: str, image_name: str) -> str:
    """REGISTRY/NAME@sha256:... from such a reference, or from a bare digest of
    `image_name` (the registry's REGISTRY/NAME)."""
    image = image.strip()
    if DIGEST.fullmatch(image):
        return f"{image_name}@{image}"
    if PINNED.fullmatch(image):
        return image
    raise DeliveryError(
        f"{image!r} is not an image digest: pass sha256:<64 hex digits> or "
        "REGISTRY/NAME@sha256:<64 hex digits> (images are deployed by digest, never by tag)"
    )


def digest_of(reference: str) -> str:
    return reference.rsplit("@", 1)[1]
