"""Request ids, one access log line per request, and the request metrics."""

import logging
import re
import time
import uuid

from flask import Flask, Response, g, request

from service.logs import ACCESS_LOGGER
from service.metrics import Metrics, method_label

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


def register_request_logging(app: Flask, metrics: Metrics) -> None:
    @app.before_request
    def _start() -> None:
        g.request_id = request_id_for(request.headers.get(REQUEST_ID_HEADER))
        g.started = time.perf_counter()

    @app.after_request
    def _finish(response: Response) -> Response:
        request_id = g.get("request_id") or uuid.uuid4().hex
        seconds = time.perf_counter() - g.get("started", time.perf_counter())
        route = request.url_rule.rule if request.url_rule else "unmatched"
        response.headers[REQUEST_ID_HEADER] = request_id
        record_request(metrics, request_id, route, request.method, response.status_code,
                       seconds, g.get("key_id"))  # fmt: skip
        return response
