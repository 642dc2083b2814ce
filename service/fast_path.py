"""The scoring endpoints' common case, answered without Flask's request machinery.

Well-formed POSTs to /predict/ (/predict) and /v1/predict are nearly all the traffic, and
Flask's request and response objects, hooks and context proxies cost several times what
scoring a review does. This WSGI layer answers them itself, doing what the Flask path does
on the way: request id, API key, the same validation, metrics, access line, headers.
Anything else (another route or method, a body not sent with a Content-Length, no valid
key, a request the validation would refuse, a service not ready) goes to Flask as it
came, the body put back: every error answer has one source, the Flask app. One
exception: a key over its rate limit gets its 429 here, built by the same function
Flask's is (service/rate_limit.py), so a flood of refusals costs less than the traffic
it would have been.
"""

import io
import json
import logging
import time
from collections.abc import Callable, Iterable
from typing import Any

from model import Scorer
from service import api
from service.api_keys import KeyRing
from service.auth import presented_key
from service.errors import APIError
from service.rate_limit import ANONYMOUS, DECIDED, RateLimiter, Refused, too_many_requests
from service.recorder import Scored
from service.request_log import REQUEST_ID_HEADER, record_request, request_id_for
from service.soft_launch import ANSWERED_BY_HEADER
from service.state import ServiceState
from service.validation import check_batch, check_review, reject_constant

WSGIApp = Callable[[dict, Callable], Iterable[bytes]]
SINGLE, BATCH = "/predict/", "/v1/predict"
# Path -> the URL rule Flask would match (the metrics' and the log's route).
ROUTES = {"/predict/": SINGLE, "/predict": SINGLE, "/v1/predict": BATCH}

logger = logging.getLogger(api.__name__)


def flask_json(document: dict) -> bytes:
    """`document` as Flask's JSON provider writes it: sorted keys, compact, a final newline."""
    return (json.dumps(document, sort_keys=True, separators=(",", ":")) + "\n").encode()


class FastPath:
    def __init__(
        self,
        flask: WSGIApp,
        state: ServiceState,
        keyring: KeyRing | None,
        limiter: RateLimiter | None,
        headers: dict[str, str],
    ):
        self.flask = flask
        self._state = state
        self._keyring = keyring
        self._limiter = limiter
        self._headers = list(headers.items())
        self._auth = state.settings.auth.required
        limits = state.settings.service
        self._max_body, self._max_batch = limits.max_body_bytes, limits.max_batch_size
        self._max_chars, self._log_texts = limits.max_review_chars, limits.log_review_text

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        route = ROUTES.get(environ.get("PATH_INFO", ""))
        if route is None or environ.get("REQUEST_METHOD") != "POST":
            return self.flask(environ, start_response)
        started = time.perf_counter()
        # The key, readiness and the key's rate limit first, from headers alone: a caller
        # without a valid key, or over its limit, gets Flask's 401 or 429 before a byte of
        # its body is read (and Flask does not count the request again).
        key_id = self._key_id(environ)
        scorer = self._state.scorer
        if key_id is False or scorer is None or self._state.not_ready_reason is not None:
            return self.flask(environ, start_response)
        if self._limiter is not None:
            refused = environ[DECIDED] = self._limiter.admit(key_id)
            if refused is not None:
                return self._refuse(route, environ, start_response, started, key_id, refused)
        raw = self._body(environ)
        if raw is None:
            return self.flask(environ, start_response)
        try:
            answered = self._answer(route, environ, raw, started, scorer, key_id)
        except Exception:  # Flask answers it again, and its handlers log what went wrong
            answered = None
        if answered is None:
            environ["wsgi.input"] = io.BytesIO(raw)
            return self.flask(environ, start_response)
        body, request_id, answered_by = answered
        start_response("200 OK", [
            ("Content-Type", "application/json"), ("Content-Length", str(len(body))),
            (REQUEST_ID_HEADER, request_id), *self._headers,
            *([(ANSWERED_BY_HEADER, answered_by)]
              if self._state.soft_launch.says_who_answered else []),
        ])  # fmt: skip
        return [body]

    def _refuse(
        self,
        route: str,
        environ: dict,
        start_response: Callable,
        started: float,
        key_id: str | None,
        refused: Refused,
    ) -> Iterable[bytes]:
        """The 429 Flask would send (service/rate_limit.py), without Flask: a key flooding
        past its limit costs less than its admitted requests, not more."""
        error = too_many_requests(refused)
        body = flask_json(error.to_dict())
        request_id = request_id_for(environ.get("HTTP_X_REQUEST_ID"))
        metrics = self._state.metrics
        metrics.count_rate_limited(key_id or ANONYMOUS)
        record_request(metrics, request_id, route, "POST", error.status,
                       time.perf_counter() - started, key_id)  # fmt: skip
        start_response("429 TOO MANY REQUESTS", [
            ("Content-Type", "application/json"), ("Content-Length", str(len(body))),
            *error.headers.items(), (REQUEST_ID_HEADER, request_id), *self._headers,
        ])  # fmt: skip
        return [body]

    def _key_id(self, environ: dict) -> str | bool | None:
        """The id of the valid key presented; None where no key is asked for; False when
        one is asked for and not given."""
        if not self._auth:
            return None
        key = presented_key(environ.get("HTTP_AUTHORIZATION"), environ.get("HTTP_X_API_KEY"))
        key_id = self._keyring.identify(key) if self._keyring else None
        return False if key_id is None else key_id

    def _body(self, environ: dict) -> bytes | None:
        """The whole body when it came with a plain Content-Length within the limit, else
        None (and nothing read): chunked, oversize or odd bodies are Flask's to answer."""
        length = environ.get("CONTENT_LENGTH", "")
        if not (length.isascii() and length.isdigit() and len(length) <= 12):
            return None
        if environ.get("HTTP_TRANSFER_ENCODING"):
            return None
        size = int(length)
        if not 0 < size <= self._max_body:
            return None
        try:
            raw = environ["wsgi.input"].read(size)
        except OSError:
            raw = b""
        # A short read (the client went away) is Flask's to answer, with what came.
        if len(raw) != size:
            environ["wsgi.input"] = io.BytesIO(raw)
            return None
        return raw

    def _answer(
        self,
        route: str,
        environ: dict,
        raw: bytes,
        started: float,
        scorer: Scorer,
        key_id: str | None,
    ) -> tuple[bytes, str, str] | None:
        """The JSON answer, the request id and which model answered, or None: Flask is to
        answer."""
        texts = self._texts(route, raw)
        if texts is None:
            return None
        request_id = request_id_for(environ.get("HTTP_X_REQUEST_ID"))
        launch = self._state.soft_launch
        challenger = launch.answering(key_id, request_id)
        answering = challenger or scorer
        predictions = answering.predict(texts)
        if route == SINGLE:
            document = api.single_answer(predictions[0], answering.version)
        else:
            document = api.batch_answer(predictions, answering.version, request_id)
        body = flask_json(document)
        metrics = self._state.metrics
        metrics.count_predictions(predictions)
        if key_id is not None:
            metrics.count_key(key_id)
        if self._log_texts:
            logger.debug("reviews scored", extra={"reviews": texts, "request_id": request_id})
        seconds = time.perf_counter() - started
        answered_by = "challenger" if challenger else "champion"
        self._state.recorder.record(Scored(
            time.time(), request_id, key_id, texts, predictions, seconds, answering,
            answered_by, launch.shadowing(request_id),
        ))  # fmt: skip
        record_request(metrics, request_id, route, "POST", 200, seconds, key_id)
        return body, request_id, answered_by

    def _texts(self, route: str, raw: bytes) -> list[str] | None:
        """The reviews, when the Flask path would accept the body as they are; else None."""
        try:
            payload: Any = json.loads(raw.decode("utf-8"), parse_constant=reject_constant)
        except (UnicodeDecodeError, ValueError, RecursionError):
            return None
        if type(payload) is not dict or len(payload) != 1:
            return None
        try:
            if route == SINGLE:
                review = payload.get("review")
                if type(review) is not str:
                    return None
                check_review(review, "review", self._max_chars)
                return [review]
            reviews = payload.get("reviews")
            if type(reviews) is not list or any(type(item) is not str for item in reviews):
                return None
            check_batch(reviews, self._max_batch, self._max_chars)
            return reviews
        except APIError:
            return None
