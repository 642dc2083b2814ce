"""The base image the service image is built FROM, pinned by digest in config/delivery.yaml.

A tag moves (python:3.11-slim-bookworm is rebuilt every few weeks), so a build from a tag
is not repeatable and trusts whatever the registry serves that day. The pin keeps the tag
people read and the digest builds use: `NAME:TAG@sha256:...` (docker and podman pull the
digest). `make pin-base-image` moves the pin to what the tag names now, as a reviewed
commit. Only an image made on this host (`localhost/...`, `make base-image`) has no
registry digest to pin."""

import hashlib
import re
from collections.abc import Callable
from pathlib import Path

import yaml

from sentiment.files import atomic_write
from sentiment_release.delivery.errors import DeliveryError
from sentiment_release.delivery.references import NAME, SHA256_DIGEST, TAG
from sentiment_release.delivery.skopeo import skopeo

_TAG = rf"(:(?P<tag>{TAG}))"
PINNED_BASE = re.compile(rf"^{NAME}{_TAG}?@(?P<digest>{SHA256_DIGEST})$")
TAGGED_BASE = re.compile(rf"^{NAME}{_TAG}$")
LOCAL_BASE = re.compile(rf"^localhost/[a-z0-9._/-]+(:{TAG})?$")
LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "[::1]")
# The one line of config/delivery.yaml the pin rewrites: `  base_image: VALUE  # ...`.
CONFIG_LINE = re.compile(r"^(?P<lead>[ ]+base_image:[ ]*)(?P<value>[^\s#]+)(?P<rest>.*)$", re.M)


def check_pinned(reference: str) -> str:
    """The reference, if builds from it are repeatable; ValueError saying how otherwise."""
    if PINNED_BASE.fullmatch(reference) or LOCAL_BASE.fullmatch(reference):
        return reference
    raise ValueError(
        "not pinned by digest: give NAME:TAG@sha256:<64 hex digits> "
        "(`make pin-base-image` resolves the tag), or a localhost/ image made on this host"
    )


def resolve(tagged: str) -> str:
    """The digest the registry serves for NAME:TAG now: the sha256 of the manifest bytes,
    a multi-platform index where there is one, as a pull of NAME@DIGEST checks it."""
    name = tagged.split("/", 1)[0]
    verify = str(name.split(":", 1)[0] not in LOOPBACK_HOSTS).lower()
    manifest = skopeo("inspect", "--raw", "--retry-times", "2", f"--tls-verify={verify}",
                      f"docker://{tagged}", doing=f"resolving {tagged}", text=False)  # fmt: skip
    assert isinstance(manifest, bytes)
    if not manifest.strip():
        raise DeliveryError(f"resolving {tagged}: the registry returned an empty manifest")
    return f"sha256:{hashlib.sha256(manifest).hexdigest()}"


def pin(config_file: Path, resolver: Callable[[str], str] = resolve) -> tuple[str, str]:
    """Re-pins build.base_image in `config_file` to what its tag names now, keeping every
    other byte of the file; (old reference, new reference)."""
    text = config_file.read_text()
    lines = list(CONFIG_LINE.finditer(text))
    if len(lines) != 1:
        raise DeliveryError(f"{config_file}: expected one `base_image:` line, found {len(lines)}")
    line = lines[0]
    current = line["value"]
    match = PINNED_BASE.fullmatch(current) or TAGGED_BASE.fullmatch(current)
    if match is None or match["tag"] is None or LOCAL_BASE.fullmatch(current):
        raise DeliveryError(
            f"{config_file}: build.base_image {current!r} names no registry tag to follow "
            "(a localhost/ image is made here, `make base-image`, and has nothing to pin)"
        )
    tagged = f"{match['name']}:{match['tag']}"
    pinned = f"{tagged}@{resolver(tagged)}"
    if not PINNED_BASE.fullmatch(pinned):
        raise DeliveryError(f"resolving {tagged}: {pinned!r} is not a pinned reference")
    updated = f"{text[: line.start()]}{line['lead']}{pinned}{line['rest']}{text[line.end() :]}"
    try:
        document = yaml.safe_load(updated)
    except yaml.YAMLError as error:
        raise DeliveryError(f"{config_file} is not valid YAML: {error}") from None
    if ((document or {}).get("build") or {}).get("base_image") != pinned:
        raise DeliveryError(f"{config_file}: its base_image line is not build.base_image")
    if updated != text:
        atomic_write(config_file, updated.encode())
    return current, pinned
