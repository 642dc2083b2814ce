"""Request ids, one access line and the request metrics per request: the outermost
middleware but one (sentiment/serving/app.py), so every answer is logged and counted,
whoever gave it, the API-key check's refusals included."""

import atexit
import collections
import json
import logging
import os
import random
import re
import sys
import threading
import time
from collections.abc import Callable, Iterable

from sentiment.serving.answers import KEY_ID, REQUEST_ID, STARTED, WSGIApp
from sentiment.serving.logs import ACCESS_LOGGER
from sentiment.serving.metrics import Metrics, method_label

REQUEST_ID_HEADER = "X-Request-ID"
# Incoming ids are echoed into logs and headers, so only plain tokens are trusted.
VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")

logger = logging.getLogger(ACCESS_LOGGER)


def request_id_for(incoming: str | None) -> str:
    """The client's X-Request-ID when it is a plain token, else a new one: 128 random bits,
    not from the system's secret source (a syscall per request): an id is a handle, not a
    secret (feedback finds a prediction by its key id too)."""
    if incoming and VALID_REQUEST_ID.match(incoming):
        return incoming
    return f"{random.getrandbits(128):032x}"


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
    if logger.isEnabledFor(logging.INFO):
        ACCESS_LINES.add(request_id, method, route, status, seconds, key_id)


class AccessLines:
    """The access lines of this process, one JSON line per request, shaped as every other
    log line (sentiment/serving/logs.py), written to stderr in batches by a thread, at most
    FLUSH_SECONDS after their request, and at exit: as nginx's buffered access log does.
    Through the logging module a line cost about a third of a request's time (a record, a
    formatter, and a write per request that gave the interpreter lock away); here it is
    a string made from values that need no escaping (a request id of a plain-token
    pattern, a method label, a URL rule, a key id of the key file's pattern, numbers)."""

    FLUSH_SECONDS = 0.1

    def __init__(self) -> None:
        self._lines: collections.deque[str] = collections.deque()
        self._pid: int | None = None
        self._lock = threading.Lock()
        self._second, self._second_text = -1, ""

    def add(
        self,
        request_id: str,
        method: str,
        route: str,
        status: int,
        seconds: float,
        key_id: str | None,
    ) -> None:
        if self._pid != os.getpid():
            self._start()
        now = time.time()
        second = int(now)
        if second != self._second:
            self._second_text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
            self._second = second
        key = f', "key_id": {_string(key_id)}' if key_id is not None else ""
        self._lines.append(
            f'{{"level": "INFO", "logger": "{ACCESS_LOGGER}", "message": "request", '
            f'"request_id": "{request_id}", "method": "{method}", "route": {_string(route)}, '
            f'"status": {status}, "latency_ms": {round(seconds * 1000, 3)!r}{key}, '
            f'"timestamp": "{self._second_text}.{int((now - second) * 1e6):06d}+00:00"}}\n'
        )

    def flush(self) -> None:
        """Writes what is waiting (a line added meanwhile waits for the next flush)."""
        lines = []
        try:
            while True:
                lines.append(self._lines.popleft())
        except IndexError:
            pass
        if lines:
            sys.stderr.write("".join(lines))
            sys.stderr.flush()

    def _start(self) -> None:
        """The writer of this process: a thread does not survive a fork, and lines a parent
        had not written are its own to write."""
        with self._lock:
            if self._pid == os.getpid():
                return
            self._lines = collections.deque()
            self._pid = os.getpid()
            threading.Thread(target=self._run, name="access-log", daemon=True).start()
            atexit.register(self.flush)

    def _run(self) -> None:
        while True:
            time.sleep(self.FLUSH_SECONDS)
            self.flush()


ACCESS_LINES = AccessLines()
# Key ids and URL rules are of this shape: quoted as they are; anything else goes to json.
PLAIN = re.compile(r"[A-Za-z0-9._:/<>-]*").fullmatch


def _string(value: str) -> str:
    return f'"{value}"' if PLAIN(value) else json.dumps(value)


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
