"""SentimentClient: the Sentiment API over requests, with the habits a caller needs.

- Every call has a timeout (connect, read): a hung service never hangs the caller.
- What is safe to retry is retried, with exponential backoff and full jitter: a
  connection that failed (refused, reset, unreachable) and a 503 that passes (not ready
  yet, shutting down; its Retry-After is honoured). Nothing else: a 4xx is the request's
  fault, a 429 says how long to wait (RateLimited.retry_after), and a read that timed
  out may have been scored already. Feedback, which must be recorded once, is retried
  only when its request never left (the connection was never made).
- Every attempt of one call carries the same X-Request-ID, which every answer and error
  surfaces: quote it to the service's operators.
- predict_many splits any number of reviews into batches the service accepts (its
  limits, read once from /openapi.json).
"""

import json
import random
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import requests
import urllib3

from sentiment_client.errors import (
    ApiError,
    ConnectionFailed,
    InvalidRequest,
    NotReady,
    RateLimited,
    Unauthorized,
)

REQUEST_ID_HEADER = "X-Request-ID"
# 503s that a retry will not change: this service records no predictions to give
# feedback on.
LASTING_503 = frozenset({"no_outcomes"})
# Longest Retry-After taken from a service, in seconds.
MAX_RETRY_AFTER = 3600.0
# Seconds to connect, and to wait for the answer (a full batch of long reviews is scored
# in well under a second on the service's own machine).
DEFAULT_TIMEOUT = (3.05, 30.0)
# Bytes a batch's JSON wrapper adds to its reviews: {"reviews": [...]}.
ENVELOPE_BYTES = 16


@dataclass(frozen=True)
class Prediction:
    """One review's score. `request_id` and `item` name it for feedback and support."""

    label: str
    positive: float
    negative: float
    model_version: str
    request_id: str
    item: int


@dataclass(frozen=True)
class Limits:
    """What one batch may hold, as the service's /openapi.json says."""

    max_batch_size: int
    max_body_bytes: int


class SentimentClient:
    def __init__(
        self,
        base_url: str,
        api_key: str | None = None,
        *,
        timeout: tuple[float, float] = DEFAULT_TIMEOUT,
        retries: int = 3,
        backoff: float = 0.25,
        max_backoff: float = 10.0,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ):
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"{base_url!r} is not an http(s) URL")
        if retries < 0 or backoff < 0 or max_backoff < 0:
            raise ValueError("retries, backoff and max_backoff cannot be negative")
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self.max_backoff = max_backoff
        self._sleep = sleep
        self._session = session or requests.Session()
        if api_key:
            self._session.headers["Authorization"] = f"Bearer {api_key}"
        self._limits: Limits | None = None

    def __enter__(self) -> "SentimentClient":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self._session.close()

    # Scoring

    def predict(self, review: str, *, request_id: str | None = None) -> Prediction:
        return self.predict_batch([review], request_id=request_id)[0]

    def predict_batch(
        self, reviews: Sequence[str], *, request_id: str | None = None
    ) -> list[Prediction]:
        """One request: at most the service's max_batch_size reviews (else InvalidRequest)."""
        body = json.dumps({"reviews": list(reviews)}).encode()
        answer, request_id = self._call("POST", "/v1/predict", body, request_id)
        version = answer["model_version"]
        return [
            Prediction(p["label"], p["positive"], p["negative"], version, request_id, item)
            for item, p in enumerate(answer["predictions"])
        ]

    def predict_many(self, reviews: Iterable[str]) -> list[Prediction]:
        """Any number of reviews, in as few requests as the service's limits allow; the
        predictions in the reviews' order."""
        predictions: list[Prediction] = []
        for batch in self.batches(reviews):
            predictions.extend(self.predict_batch(batch))
        return predictions

    def batches(self, reviews: Iterable[str]) -> Iterator[list[str]]:
        """`reviews` cut into batches within max_batch_size and max_body_bytes. A review
        too long for a body of its own is sent alone (and refused, 413, by the service)."""
        limits = self.limits()
        batch: list[str] = []
        size = ENVELOPE_BYTES
        for review in reviews:
            item = len(json.dumps(review).encode()) + 2  # its JSON and ", "
            if batch and (len(batch) == limits.max_batch_size
                          or size + item > limits.max_body_bytes):  # fmt: skip
                yield batch
                batch, size = [], ENVELOPE_BYTES
            batch.append(review)
            size += item
        if batch:
            yield batch

    # Feedback and the rest

    def feedback(self, prediction: Prediction, label: int, review: str | None = None) -> dict:
        """The true label (1 positive, 0 negative) of a prediction made with this key."""
        body: dict[str, Any] = {"request_id": prediction.request_id, "item": prediction.item,
                                "label": label}  # fmt: skip
        if review is not None:
            body["review"] = review
        return self._call("POST", "/v1/feedback", json.dumps(body).encode(), once=True)[0]

    def model(self) -> dict:
        """The model being served and the service around it (GET /v1/model)."""
        return self._call("GET", "/v1/model")[0]

    def ready(self) -> bool:
        """Whether the service can score now (one try, no retries)."""
        try:
            response = self._session.get(f"{self.base_url}/readyz", timeout=self.timeout)
        except requests.RequestException:
            return False
        return response.status_code == 200

    def limits(self) -> Limits:
        if self._limits is None:
            document = self._call("GET", "/openapi.json")[0]
            operation = document["paths"]["/v1/predict"]["post"]["requestBody"]
            reviews = document["components"]["schemas"]["BatchPredictRequest"]["properties"]
            self._limits = Limits(int(reviews["reviews"]["maxItems"]),
                                  int(operation["x-max-body-bytes"]))  # fmt: skip
        return self._limits

    # The calls

    def _call(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        request_id: str | None = None,
        once: bool = False,
    ) -> tuple[Any, str]:
        """The answer's JSON and its request id; an ApiError for any other status. `once`:
        the call must not be done twice, so a connection lost after sending is not retried."""
        request_id = request_id or uuid.uuid4().hex
        headers = {REQUEST_ID_HEADER: request_id}
        if body is not None:
            headers["Content-Type"] = "application/json"
        url = f"{self.base_url}{path}"
        for attempt in range(self.retries + 1):
            last = attempt == self.retries
            try:
                response = self._session.request(method, url, data=body, headers=headers,
                                                 timeout=self.timeout)  # fmt: skip
            except requests.ReadTimeout as error:
                raise ConnectionFailed(
                    f"{method} {path}: no answer within {self.timeout[1]} s (request id "
                    f"{request_id}); not retried, the service may have done it"
                ) from error
            except requests.ConnectionError as error:
                if last or (once and not _never_sent(error)):
                    raise ConnectionFailed(
                        f"{method} {path}: {error} (after {attempt + 1} attempts, request id "
                        f"{request_id})"
                    ) from error
                self._sleep(self._delay(attempt, None))
                continue
            if (
                response.status_code == 503
                and not last
                and _error_body(response)[0] not in LASTING_503
            ):
                self._sleep(self._delay(attempt, _retry_after(response)))
                continue
            answered_id = response.headers.get(REQUEST_ID_HEADER, request_id)
            if response.status_code in (200, 201):
                return response.json(), answered_id
            raise _error(response, answered_id)
        raise AssertionError("unreachable")  # the loop returns or raises

    def _delay(self, attempt: int, retry_after: float | None) -> float:
        """Full jitter over an exponential ceiling; at least what Retry-After asks, within
        max_backoff."""
        jittered = random.uniform(0, min(self.max_backoff, self.backoff * 2**attempt))  # noqa: S311
        return min(self.max_backoff, max(jittered, retry_after or 0.0))


def _never_sent(error: requests.ConnectionError) -> bool:
    """Whether the connection failed before the request went out (refused, no route, no
    name, connect timeout), as opposed to one lost after it was sent."""
    reason = getattr(error.args[0], "reason", None) if error.args else None
    return isinstance(error, requests.ConnectTimeout) or isinstance(
        reason, urllib3.exceptions.NewConnectionError | urllib3.exceptions.ConnectTimeoutError
    )


def _retry_after(response: requests.Response) -> float | None:
    """Retry-After in seconds (its delay form; a date is ignored), at most MAX_RETRY_AFTER."""
    value = response.headers.get("Retry-After", "").strip()
    if not (value.isascii() and value.isdigit()):
        return None
    return min(float(value), MAX_RETRY_AFTER)


def _error_body(response: requests.Response) -> tuple[str, str]:
    """The service's error code and message; for another body (a proxy's page, say),
    http_<status> and its start."""
    try:
        error = response.json()["error"]
        return str(error["code"]), str(error["message"])
    except (ValueError, KeyError, TypeError):
        return f"http_{response.status_code}", response.text[:200]


def _error(response: requests.Response, request_id: str) -> ApiError:
    code, message = _error_body(response)
    status = response.status_code
    if status == 401:
        return Unauthorized(status, code, message, request_id)
    if status == 429:
        return RateLimited(status, code, message, request_id, _retry_after(response) or 1.0)
    if status == 503:
        return NotReady(status, code, message, request_id)
    if 400 <= status < 500:
        return InvalidRequest(status, code, message, request_id)
    return ApiError(status, code, message, request_id)
