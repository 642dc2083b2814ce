"""Every error leaves the API as JSON: {"error": {"code": ..., "message": ...}}."""

import logging

from flask import Flask, Response, jsonify
from werkzeug.exceptions import HTTPException

logger = logging.getLogger(__name__)


class APIError(Exception):
    status = 500
    code = "internal_error"
    headers: dict[str, str] = {}  # noqa: RUF012  (never mutated)

    def __init__(self, message: str, code: str | None = None, details: list | None = None):
        super().__init__(message)
        self.message = message
        self.code = code or self.code
        self.details = details

    def to_dict(self) -> dict:
        error = {"code": self.code, "message": self.message}
        if self.details:
            error["details"] = self.details
        return {"error": error}


class BadRequest(APIError):
    """The body is not JSON of the documented shape."""

    status = 400
    code = "bad_request"


class Unprocessable(APIError):
    """Well-formed, but the values cannot be scored (empty, too long, too many)."""

    status = 422
    code = "unprocessable"


class PayloadTooLarge(APIError):
    status = 413
    code = "payload_too_large"


class Unauthorized(APIError):
    """No valid API key: the same answer whether it was missing, malformed or wrong."""

    status = 401
    code = "unauthorized"
    headers = {"WWW-Authenticate": 'Bearer realm="sentiment"'}  # noqa: RUF012


class TooManyRequests(APIError):
    """The key is over its rate limit (sentiment/serving/rate_limit.py); Retry-After says when."""

    status = 429
    code = "rate_limited"

    def __init__(self, message: str, retry_after: str):
        super().__init__(message)
        self.headers = {"Retry-After": retry_after}


class MethodNotAllowed(APIError):
    status = 405
    code = "method_not_allowed"

    def __init__(self, message: str, allow: str):
        super().__init__(message)
        self.headers = {"Allow": allow}


class InternalError(APIError):
    """A fault of ours: logged with its traceback, answered without one."""


class NotReady(APIError):
    status = 503
    code = "not_ready"


def error_response(status: int, code: str, message: str, details: list | None = None) -> Response:
    body = APIError(message, code, details).to_dict()
    response = jsonify(body)
    response.status_code = status
    return response


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(APIError)
    def _api_error(error: APIError) -> Response:
        response = jsonify(error.to_dict())
        response.status_code = error.status
        response.headers.update(error.headers)
        return response

    @app.errorhandler(HTTPException)
    def _http_error(error: HTTPException) -> Response:
        code = (error.name or "http_error").lower().replace(" ", "_")
        response = error_response(error.code or 500, code, error.description or error.name)
        # Keep protocol headers such as Allow on a 405.
        for name, value in error.get_headers():
            if name.lower() != "content-type":
                response.headers[name] = value
        return response

    @app.errorhandler(Exception)
    def _unexpected(error: Exception) -> Response:
        logger.exception("unhandled error")
        return _api_error(InternalError("internal server error"))
