"""Turns a raw request body into a validated request, or a 4xx that says what is wrong.

Structure (not JSON, wrong types, unknown fields) is a 400; values the model
cannot score (empty or too long reviews, too many of them) are a 422.
"""

import json
from typing import Any, TypeVar

from flask import Request
from pydantic import BaseModel, ValidationError
from werkzeug.exceptions import RequestEntityTooLarge

from sentiment.serving.errors import BadRequest, PayloadTooLarge, Unprocessable

Model = TypeVar("Model", bound=BaseModel)


def read_json(request: Request, max_bytes: int) -> Any:
    """The JSON document in a Flask request's body, whatever the Content-Type."""
    try:
        raw = request.get_data(cache=True)
    except RequestEntityTooLarge:
        raise PayloadTooLarge(f"request body exceeds {max_bytes} bytes") from None
    return decode_json(raw)


def decode_json(raw: bytes) -> Any:
    """The JSON document in a body, whatever the Content-Type: the documented client is
    `curl -d '{...}'`, which sends application/x-www-form-urlencoded, so the header cannot
    be trusted to say JSON."""
    if not raw.strip():
        raise BadRequest("request body is empty; send a JSON object", "invalid_json")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise BadRequest(
            f"request body is not valid UTF-8 (byte {error.start})", "invalid_json"
        ) from None
    try:
        return json.loads(text, parse_constant=reject_constant)
    except RecursionError:
        raise BadRequest("request body is nested too deeply", "invalid_json") from None
    except ValueError as error:  # JSONDecodeError, and ints past Python's digit limit
        raise BadRequest(f"request body is not valid JSON: {error}", "invalid_json") from None


def reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not allowed in JSON")


def parse(model: type[Model], payload: Any) -> Model:
    if not isinstance(payload, dict):
        raise BadRequest("request body must be a JSON object", "invalid_request")
    try:
        return model.model_validate(payload)
    except ValidationError as error:
        details = [
            {
                "field": ".".join(str(part) for part in item["loc"]) or None,
                "message": item["msg"],
            }
            for item in error.errors(include_url=False, include_input=False)
        ]
        summary = "; ".join(f"{d['field']}: {d['message']}" for d in details)
        raise BadRequest(f"invalid request: {summary}", "invalid_request", details) from None


def check_review(text: str, field: str, max_chars: int) -> None:
    if not text.strip():
        raise Unprocessable(f"{field} is empty", "empty_review")
    if len(text) > max_chars:
        raise Unprocessable(
            f"{field} has {len(text)} characters; the limit is {max_chars}", "review_too_long"
        )
    if "\x00" in text:
        raise Unprocessable(f"{field} contains a NUL character", "invalid_text")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate such as "\ud800", legal in JSON
        raise Unprocessable(f"{field} contains an unpaired surrogate", "invalid_text") from None


def check_batch(reviews: list[str], max_batch: int, max_chars: int) -> None:
    if not reviews:
        raise Unprocessable("reviews is empty; send at least one review", "empty_batch")
    if len(reviews) > max_batch:
        raise Unprocessable(
            f"reviews has {len(reviews)} items; the limit is {max_batch}", "batch_too_large"
        )
    for index, review in enumerate(reviews):
        check_review(review, f"reviews[{index}]", max_chars)
