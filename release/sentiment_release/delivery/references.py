"""Image references. Deployments take a registry digest, never a tag: a tag can move."""

import re
from typing import TYPE_CHECKING, Annotated

from pydantic import Field

from sentiment_release.delivery.errors import DeliveryError

if TYPE_CHECKING:  # delivery.config reads the patterns here (through base_image)
    from sentiment_release.delivery.config import RegistrySettings

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


def pinned_reference(image: str, registry: "RegistrySettings") -> str:
    """REGISTRY/NAME@sha256:... from such a reference or from a bare digest."""
    image = image.strip()
    if DIGEST.fullmatch(image):
        return f"{registry.image_name}@{image}"
    if PINNED.fullmatch(image):
        return image
    raise DeliveryError(
        f"{image!r} is not an image digest: pass sha256:<64 hex digits> or "
        "REGISTRY/NAME@sha256:<64 hex digits> (images are deployed by digest, never by tag)"
    )


def digest_of(reference: str) -> str:
    return reference.rsplit("@", 1)[1]
