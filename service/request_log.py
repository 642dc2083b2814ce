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


def register_request_logging(app: Flask, metrics: Metrics) -> None:
    @app.before_request
    def _start() -> None:
        incoming = request.headers.get(REQUEST_ID_HEADER, "")
        g.request_id = incoming if VALID_REQUEST_ID.match(incoming) else uuid.uuid4().hex
        g.started = time.perf_counter()

    @app.after_request
    def _finish(response: Response) -> Response:
        request_id = g.get("request_id") or uuid.uuid4().hex
        seconds = time.perf_counter() - g.get("started", time.perf_counter())
        # The rule, not the path: a client cannot create new label values or log fields.
        route = request.url_rule.rule if request.url_rule else "unmatched"
        response.headers[REQUEST_ID_HEADER] = request_id
        method = method_label(request.method)
        metrics.observe_request(route, method, response.status_code, seconds)
        logger.info(
            "request",
            extra={
                "request_id": request_id,
                "method": method,
                "route": route,
                "status": response.status_code,
                "latency_ms": round(seconds * 1000, 3),
                # The id of the key that was let in; never the key.
                "key_id": g.get("key_id"),
            },
        )
        return response
