"""The bare floor: a plain WSGI function that reads the request's body and answers a
constant in the service's /predict/ shape. Under the service's gunicorn worker settings
nothing answers /predict/ sooner, so it is the 100% mark. The standard library only: its
workers hold gunicorn and this, nothing else."""

import json
from collections.abc import Callable, Iterable

# The service's /predict/ answer (sentiment/serving/api.py single_answer), written as its JSON
# provider writes it: sorted keys, compact, a final newline.
ANSWER = {"model_version": "floor", "negative": 0.1, "positive": 0.9}
READY = {"status": "ready"}
NOT_FOUND = {"error": "not_found"}


def _json(document: dict) -> bytes:
    return (json.dumps(document, sort_keys=True, separators=(",", ":")) + "\n").encode()


ROUTES = {
    ("POST", "/predict/"): ("200 OK", _json(ANSWER)),
    ("GET", "/readyz"): ("200 OK", _json(READY)),
}
MISSING = ("404 NOT FOUND", _json(NOT_FOUND))


def app(environ: dict, start_response: Callable) -> Iterable[bytes]:
    status, body = ROUTES.get((environ.get("REQUEST_METHOD"), environ.get("PATH_INFO")), MISSING)
    length = environ.get("CONTENT_LENGTH") or ""
    if length.isdigit():
        environ["wsgi.input"].read(int(length))
    start_response(status, [("Content-Type", "application/json"),
                            ("Content-Length", str(len(body)))])  # fmt: skip
    return [body]
