"""A release's name in the registry: `vX.Y.Z` on the digest that was released, written
with skopeo, registry to registry, without pulling or rebuilding anything; the tag is
read back and must name that very digest."""

from sentiment_release.delivery.errors import DeliveryError
from sentiment_release.delivery.references import OCI_TAG, PINNED
from sentiment_release.delivery.skopeo import skopeo


def tag_in_registry(image: str, tag: str, tls_verify: bool) -> str:
    """Tags `image` (REGISTRY/NAME@sha256:...) as REGISTRY/NAME:`tag`; that reference."""
    match = PINNED.fullmatch(image)
    if match is None:
        raise DeliveryError(f"{image!r} is not an image pinned by digest")
    if not OCI_TAG.fullmatch(tag):
        raise DeliveryError(f"{tag!r} cannot be a registry tag (letters, digits, . _ -)")
    tagged = f"{match['name']}:{tag}"
    verify = str(tls_verify).lower()
    doing = f"tagging {image} as {tag}"
    skopeo("copy", "--quiet", f"--src-tls-verify={verify}", f"--dest-tls-verify={verify}",
           f"docker://{image}", f"docker://{tagged}", doing=doing)  # fmt: skip
    found = str(skopeo("inspect", f"--tls-verify={verify}", "--format", "{{.Digest}}",
                       f"docker://{tagged}", doing=doing)).strip()  # fmt: skip
    if found != match["digest"]:
        raise DeliveryError(f"{tagged} names {found}, not the released {match['digest']}")
    return tagged
