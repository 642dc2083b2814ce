"""API keys on every request (where config says auth.required): who is calling, or 401.

Closed by default: an endpoint is open only when it is listed in OPEN_ENDPOINTS, so a
new endpoint, an unknown path or a wrong method asks for a key too. The key itself is
never logged, echoed or counted: only the id of a key that matched.
"""

import logging
from pathlib import Path

from flask import Flask, g, request

from service.api_keys import KeyFileError, KeyRing, parse_key_hashes
from service.errors import NotReady, Unauthorized
from service.metrics import Metrics
from service.settings import Settings

# Liveness, readiness, the API's description, its docs and the try-it page (the last two
# ask for a key themselves when they call the API).
OPEN_ENDPOINTS = frozenset({
    "api.healthz", "api.readyz", "api.openapi", "page.try_it", "page.static", "docs.page",
    "docs.ui", "docs.script",
})  # fmt: skip
API_KEY_HEADER = "X-API-Key"
MESSAGE = f"a valid API key is required (Authorization: Bearer KEY, or {API_KEY_HEADER}: KEY)"

logger = logging.getLogger(__name__)


def load_keyring(settings: Settings) -> tuple[KeyRing | None, str | None]:
    """The keys to accept, or why there are none (for clients; the log has the path)."""
    path: Path = settings.auth.key_hashes_file
    try:
        hashes = parse_key_hashes(path.read_text(encoding="utf-8"), str(path))
    except (OSError, UnicodeDecodeError, KeyFileError) as error:
        logger.error("API keys not loaded; the service stays not ready: %s", error)
        return None, "no API keys are configured"
    if not hashes:
        logger.error("API keys not loaded; the service stays not ready: %s lists none", path)
        return None, "no API keys are configured"
    keyring = KeyRing(hashes)
    logger.info("API keys loaded", extra={"key_ids": keyring.key_ids, "keys": len(keyring)})
    return keyring, None


def presented_key(authorization: str | None, api_key: str | None) -> str:
    """The key the client sent (its Authorization and X-API-Key headers), or "": a
    malformed header is the same as none, and an Authorization header is never overruled."""
    if authorization is not None:
        scheme, _, credentials = authorization.partition(" ")
        return credentials.strip() if scheme.lower() == "bearer" else ""
    return (api_key or "").strip()


def register_auth(app: Flask, keyring: KeyRing | None, metrics: Metrics) -> None:
    """Call after the request-id hook, so a 401 still carries its request id."""

    @app.before_request
    def _authenticate() -> None:
        if request.endpoint in OPEN_ENDPOINTS:
            return
        if keyring is None:
            raise NotReady("no API keys are configured (the service log says more)", "not_ready")
        headers = request.headers
        key_id = keyring.identify(
            presented_key(headers.get("Authorization"), headers.get(API_KEY_HEADER))
        )
        if key_id is None:
            raise Unauthorized(MESSAGE)
        g.key_id = key_id
        metrics.count_key(key_id)
