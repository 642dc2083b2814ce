"""A release's name in the registry: `vX.Y.Z` on the digest that was released, written
with skopeo, registry to registry, without pulling or rebuilding anything; the tag is
read back and must name that very digest."""

import re

from delivery.errors import DeliveryError
from delivery.references import PINNED
from support.process import CommandError, find_tool, run

# What an OCI registry accepts as a tag.
OCI_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$")
TIMEOUT_SECONDS = 120


def tag_in_registry(image: str, tag: str, tls_verify: bool) -> str:
    """Tags `image` (REGISTRY/NAME@sha256:...) as REGISTRY/NAME:`tag`; that reference."""
    match = PINNED.fullmatch(image)
    if match is None:
        raise DeliveryError(f"{image!r} is not an image pinned by digest")
    if not OCI_TAG.fullmatch(tag):
        raise DeliveryError(f"{tag!r} cannot be a registry tag (letters, digits, . _ -)")
    skopeo = find_tool("skopeo")
    if skopeo is None:
        raise DeliveryError(
            "skopeo is not installed (apt-get install skopeo, or scripts/install-podman.sh)"
        )
    tagged = f"{match['name']}:{tag}"
    verify = str(tls_verify).lower()
    try:
        run([skopeo, "copy", "--quiet", f"--src-tls-verify={verify}",
             f"--dest-tls-verify={verify}", f"docker://{image}", f"docker://{tagged}"],
            timeout=TIMEOUT_SECONDS)  # fmt: skip
        found = run([skopeo, "inspect", f"--tls-verify={verify}", "--format", "{{.Digest}}",
                     f"docker://{tagged}"], timeout=TIMEOUT_SECONDS).stdout.strip()  # fmt: skip
    except CommandError as error:
        raise DeliveryError(f"tagging {image} as {tag}: {error}") from None
    if found != match["digest"]:
        raise DeliveryError(f"{tagged} names {found}, not the released {match['digest']}")
    return tagged
