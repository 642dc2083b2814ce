"""Request ids, one access line and the request metrics per request: the outermost
middleware but one (sentiment/serving/app.py), so every answer is logged and counted, whoever gave
it, the API-key check's refusals included."""

import logging
import re
import time
import uuid
from collections.abc import Callable, Iterable

from sentiment.serving.answers import KEY_ID, REQUEST_ID, STARTED, WSGIApp
from sentiment.serving.logs import ACCESS_LOGGER
from sentiment.serving.metrics import Metrics, method_label

REQUEST_ID_HEADER = "X-Request-ID"
# Incoming ids are echoed into logs and headers, so only plain tokens are trusted.
VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")

logger = logging.getLogger(ACCESS_LOGGER)


def request_id_for(incoming: str | None) -> str:
    """The client's X-Request-ID when it is a plain token, else a new one."""
    return incoming if incoming and VALID_REQUEST_ID.match(incoming) else uuid.uuid4().hex


def record_request(
    metrics: Metrics,
    request_id: str,
    route: str,
    method: str,
    status: int,
    seconds: float,
    key_id: str | None,
) -> None:
    """The request's metrics and its access line. `route` is a URL rule or "unmatched",
    never the path: a client cannot create new label values or log fields."""
    method = method_label(method)
    metrics.observe_request(route, method, status, seconds)
    logger.info(
        "request",
        extra={
            "request_id": request_id,
            "method": method,
            "route": route,
            "status": status,
            "latency_ms": round(seconds * 1000, 3),
            # The id of the key that was let in; never the key.
            "key_id": key_id,
        },
    )


class RequestLog:
    """Gives the request its id (X-Request-ID on the answer), then logs and counts it under
    its route, as `route_of` names it, once the inner layers have answered."""

    def __init__(self, app: WSGIApp, metrics: Metrics, route_of: Callable[[dict], str]):
        self._app = app
        self._metrics = metrics
        self._route_of = route_of

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        started = environ[STARTED] = time.perf_counter()
        request_id = environ[REQUEST_ID] = request_id_for(environ.get("HTTP_X_REQUEST_ID"))
        status = 500

        def respond(status_line: str, headers: list, exc_info=None):  # type: ignore[no-untyped-def]
            nonlocal status
            status = int(status_line[:3])
            headers.append((REQUEST_ID_HEADER, request_id))
            return start_response(status_line, headers, exc_info)

        body = self._app(environ, respond)
        record_request(self._metrics, request_id, self._route_of(environ),
                       environ.get("REQUEST_METHOD", ""), status,
                       time.perf_counter() - started, environ.get(KEY_ID))  # fmt: skip
        return body
