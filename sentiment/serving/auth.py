"""API keys on every request (where config says auth.required): who is calling, or 401.

Closed by default: a request is let in without a key only when it reads (GET, HEAD) one
of the open paths (`open_requests`), so a new endpoint, an unknown path or another
method asks for a key too. The key itself is never logged, echoed or counted: only the
id of a key that matched. Refusals are cheap (no Flask), and limited per client address
(auth.refusals): guessing keys, or flooding with bad ones, is answered 429 soon.
"""

import hashlib
import logging
from collections.abc import Callable, Iterable
from pathlib import Path

from sentiment.serving.answers import KEY_ID, WSGIApp, error_answer
from sentiment.serving.api_keys import ApiKeyRing, KeyFileError, parse_key_hashes
from sentiment.serving.errors import NotReady, Unauthorized
from sentiment.serving.metrics import Metrics
from sentiment.serving.rate_limit import RateLimiter, too_many_requests
from sentiment.serving.settings import Settings

API_KEY_HEADER = "X-API-Key"
MESSAGE = f"a valid API key is required (Authorization: Bearer KEY, or {API_KEY_HEADER}: KEY)"
READS = frozenset({"GET", "HEAD"})

logger = logging.getLogger(__name__)


def open_requests(settings: Settings) -> Callable[[dict], bool]:
    """Whether a request needs no key: liveness, readiness, the API's description, and
    where they are on, its docs and the try-it page (which ask for a key themselves when
    they call the API)."""
    paths = {"/healthz", "/readyz", "/openapi.json"}
    prefixes: list[str] = []
    if settings.service.try_it_page:
        paths.add("/")
        prefixes.append("/static/")
    if settings.service.api_docs:
        paths.update({"/docs", "/docs/"})
        prefixes.append("/docs/")
    exact, under = frozenset(paths), tuple(prefixes)

    def is_open(environ: dict) -> bool:
        if environ.get("REQUEST_METHOD") not in READS:
            return False
        path = environ.get("PATH_INFO", "")
        return path in exact or (bool(under) and path.startswith(under))

    return is_open


def load_keyring(settings: Settings) -> tuple[ApiKeyRing | None, str | None]:
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
    keyring = ApiKeyRing(hashes)
    logger.info("API keys loaded", extra={"key_ids": keyring.key_ids, "keys": len(keyring)})
    return keyring, None


def presented_key(authorization: str | None, api_key: str | None) -> str:
    """The key the client sent (its Authorization and X-API-Key headers), or "": a
    malformed header is the same as none, and an Authorization header is never overruled."""
    if authorization is not None:
        scheme, _, credentials = authorization.partition(" ")
        return credentials.strip() if scheme.lower() == "bearer" else ""
    return (api_key or "").strip()


def address_id(environ: dict) -> str:
    """The client address as a rate-limit id: never a key id (those have no "@"), and of a
    slot's size whatever the address (an IPv6 one is longer)."""
    address = environ.get("REMOTE_ADDR") or "-"
    return "@" + hashlib.blake2b(address.encode(), digest_size=15).hexdigest()


class ApiKeyCheck:
    """Lets in requests with a valid key (its id in environ[KEY_ID], counted) and open
    ones; answers the others 401, or 429 once their address is over auth.refusals."""

    def __init__(
        self,
        app: WSGIApp,
        keyring: ApiKeyRing | None,
        metrics: Metrics,
        is_open: Callable[[dict], bool],
        refusals: RateLimiter,
    ):
        self._app = app
        self._keyring = keyring
        self._metrics = metrics
        self._is_open = is_open
        self._refusals = refusals

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        if self._is_open(environ):
            return self._app(environ, start_response)
        if self._keyring is None:
            error = NotReady("no API keys are configured (the service log says more)",
                             "not_ready")  # fmt: skip
            return error_answer(start_response, error)
        key = presented_key(environ.get("HTTP_AUTHORIZATION"), environ.get("HTTP_X_API_KEY"))
        key_id = self._keyring.identify(key)
        if key_id is None:
            refused = self._refusals.admit(address_id(environ))
            if refused is not None:
                return error_answer(start_response, too_many_requests(refused, "address"))
            return error_answer(start_response, Unauthorized(MESSAGE))
        environ[KEY_ID] = key_id
        self._metrics.count_key(key_id)
        return self._app(environ, start_response)
