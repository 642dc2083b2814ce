"""WSGI answers as the API gives them, for the layers in front of Flask: JSON bodies as
Flask's provider writes them (sorted keys, compact, a final newline), errors in the shape
of sentiment/serving/errors.py, and the environ keys through which the middlewares hand on what
they learnt about a request."""

import json
from collections.abc import Callable, Iterable
from http import HTTPStatus

from sentiment.serving.errors import APIError

WSGIApp = Callable[[dict, Callable], Iterable[bytes]]

# Set by the middlewares (sentiment/serving/request_log.py, sentiment/serving/auth.py) for the
# layers inside.
REQUEST_ID = "sentiment.request_id"
KEY_ID = "sentiment.key_id"
# perf_counter() when the request came in.
STARTED = "sentiment.started"


def json_body(document: object) -> bytes:
    return (json.dumps(document, sort_keys=True, separators=(",", ":")) + "\n").encode()


def answer(
    start_response: Callable, status: int, body: bytes, headers: Iterable[tuple[str, str]] = ()
) -> list[bytes]:
    """A JSON answer of `status`."""
    start_response(f"{status} {HTTPStatus(status).phrase}", [
        ("Content-Type", "application/json"), ("Content-Length", str(len(body))), *headers,
    ])  # fmt: skip
    return [body]


def error_answer(start_response: Callable, error: APIError) -> list[bytes]:
    return answer(start_response, error.status, json_body(error.to_dict()), error.headers.items())
