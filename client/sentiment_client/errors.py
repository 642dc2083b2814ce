"""What a call can fail with. Each API error holds the service's stable `code`, its
message, the HTTP status and the request id to quote when asking for support."""


class ConnectionFailed(Exception):
    """No answer from the service (refused, reset, unreachable, timed out), after the
    retries the client was given, or a read that timed out (never retried)."""


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, request_id: str | None):
        super().__init__(f"{status} {code}: {message} (request id {request_id})")
        self.status = status
        self.code = code
        self.message = message
        self.request_id = request_id


class InvalidRequest(ApiError):
    """400, 404, 409, 413, 422: the request itself is wrong; sending it again will not help."""


class Unauthorized(ApiError):
    """401: no valid API key."""


class RateLimited(ApiError):
    """429: this key is over its rate limit; `retry_after` is the seconds to wait."""

    def __init__(self, status: int, code: str, message: str, request_id: str | None,
                 retry_after: float):  # fmt: skip
        super().__init__(status, code, message, request_id)
        self.retry_after = retry_after


class NotReady(ApiError):
    """503: the service has no verified model or is shutting down (after every retry), or
    records no predictions to give feedback on (`no_outcomes`, not retried)."""
