"""skopeo, registry to registry: what the release tag and the base-image pin run."""

from sentiment_release.delivery.errors import DeliveryError
from sentiment_release.support.process import CommandError, find_tool, run

TIMEOUT_SECONDS = 120


def skopeo(*args: str, doing: str, text: bool = True) -> str | bytes:
    """skopeo's standard output; a DeliveryError saying what was being done otherwise."""
    program = find_tool("skopeo")
    if program is None:
        raise DeliveryError(
            "skopeo is not installed (apt-get install skopeo, or scripts/install-podman.sh)"
        )
    try:
        return run([program, *args], timeout=TIMEOUT_SECONDS, text=text).stdout
    except CommandError as error:
        raise DeliveryError(f"{doing}: {error}") from None
