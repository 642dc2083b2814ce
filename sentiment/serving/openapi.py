"""The OpenAPI 3.1 document. Schemas come from service.schemas; limits from the config."""

from collections.abc import Iterator
from typing import Any

from pydantic.json_schema import models_json_schema

from sentiment.serving import schemas
from sentiment.serving.auth import MESSAGE
from sentiment.serving.rate_limit import Refused, too_many_requests
from sentiment.serving.settings.schema import AuthSettings, RateLimitSettings, ServiceSettings

REF = "#/components/schemas/{model}"
REQUEST_MODELS = (schemas.PredictRequest, schemas.BatchPredictRequest, schemas.FeedbackRequest)
RESPONSE_MODELS = (
    schemas.PredictResponse,
    schemas.FeedbackResponse,
    schemas.BatchPredictResponse,
    schemas.Health,
    schemas.Ready,
    schemas.ModelInfo,
    schemas.ErrorResponse,
)
# A review must hold something besides whitespace and no NUL character.
REVIEW_PATTERN = r"^[^\u0000]*\S[^\u0000]*$"


def _ref(model: type) -> dict:
    return {"$ref": REF.format(model=model.__name__)}


def _json(model: type, description: str, example: dict | None = None) -> dict:
    media: dict[str, Any] = {"schema": _ref(model)}
    if example is not None:
        media["example"] = example
    return {"description": description, "content": {"application/json": media}}


def _error(description: str, *examples: tuple[str, str]) -> dict:
    """An error answer; `examples` are (code, message) pairs the service sends."""
    response = _json(schemas.ErrorResponse, description)
    if examples:
        response["content"]["application/json"]["examples"] = {
            code: {"value": {"error": {"code": code, "message": message}}}
            for code, message in examples
        }
    return response


VERSION_EXAMPLE = "20261128T052859Z-f38ce53f"
REQUEST_ID_EXAMPLE = "6f1c0e0a4f8b4d0c9f4e2b7a1d3c5e7f"


def _component_schemas(limits: ServiceSettings) -> dict[str, Any]:
    pairs = [(m, "validation") for m in REQUEST_MODELS] + [
        (m, "serialization") for m in RESPONSE_MODELS
    ]
    _, definitions = models_json_schema(pairs, ref_template=REF)
    found = definitions["$defs"]
    review = {"minLength": 1, "maxLength": limits.max_review_chars, "pattern": REVIEW_PATTERN}
    found["PredictRequest"]["properties"]["review"].update(review)
    reviews = found["BatchPredictRequest"]["properties"]["reviews"]
    reviews.update({"minItems": 1, "maxItems": limits.max_batch_size})
    reviews["items"].update(review)
    found["FeedbackRequest"]["properties"]["label"].update({"enum": [0, 1]})
    return found


def _scoring_operation(
    summary: str,
    request_model: type,
    response_model: type,
    example: tuple[dict, dict],
    limits: ServiceSettings,
) -> dict:
    request, answer = example
    too_long, too_many = limits.max_review_chars + 1, limits.max_batch_size + 1
    return {
        "summary": summary,
        "tags": ["scoring"],
        "requestBody": {
            "required": True,
            "description": "A JSON object, read as JSON whatever the Content-Type says, of "
            f"at most {limits.max_body_bytes} bytes.",
            # Clients split their batches to fit (client/sentiment_client).
            "x-max-body-bytes": limits.max_body_bytes,
            "content": {"application/json": {"schema": _ref(request_model), "example": request}},
        },
        "responses": {
            "200": _json(response_model, "Scores", answer),
            "400": _error(
                "Body is not JSON, or fields are missing, unknown or of the wrong type",
                ("invalid_json", "request body is not valid JSON: Expecting value: line 1 "
                 "column 1 (char 0)"),
                ("invalid_request", "invalid request: review: Field required"),
            ),
            "413": _error("Body is larger than the configured limit",
                          ("payload_too_large",
                           f"request body exceeds {limits.max_body_bytes} bytes")),
            "422": _error(
                "Empty or too long review, empty or too large batch",
                ("empty_review", "review is empty"),
                ("review_too_long", f"review has {too_long} characters; the limit is "
                 f"{limits.max_review_chars}"),
                ("invalid_text", "review contains a NUL character"),
                ("empty_batch", "reviews is empty; send at least one review"),
                ("batch_too_large",
                 f"reviews has {too_many} items; the limit is {limits.max_batch_size}"),
            ),
            "503": _error(
                "Not ready (no verified model, or shutting down): retry with backoff",
                ("model_not_ready", "model is not loaded: no model bundle is available (the "
                 "service log says more)"),
            ),
        },
    }  # fmt: skip


# Answered without an API key (sentiment/serving/auth.py OPEN_ENDPOINTS).
OPEN_PATHS = frozenset({"/healthz", "/readyz", "/openapi.json"})
KEY_HELP = (
    "A key looks like `snt_<key id>_<43 characters>`; the service's operators make one per "
    "client (`sentiment api-keys create ENV KEY_ID`). Send it in either header."
)
SECURITY_SCHEMES = {
    "bearer": {"type": "http", "scheme": "bearer",
               "description": f"`Authorization: Bearer KEY`. {KEY_HELP}"},
    "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key",
               "description": f"`X-API-Key: KEY`. {KEY_HELP}"},
}  # fmt: skip


def _keyed_operations(paths: dict[str, dict]) -> Iterator[dict]:
    """The operations that need a key, and count against its rate limit."""
    for path, operations in paths.items():
        if path not in OPEN_PATHS:
            yield from operations.values()


def _require_keys(paths: dict[str, dict]) -> None:
    refused = _error("No valid API key (missing, wrong or revoked)", ("unauthorized", MESSAGE))
    for operation in _keyed_operations(paths):
        operation["security"] = [{"bearer": []}, {"apiKey": []}]
        operation["responses"]["401"] = refused


def _limit_rates(paths: dict[str, dict], auth: AuthSettings, rate_limit: RateLimitSettings) -> None:
    examples = []
    if rate_limit.enabled:
        examples.append(too_many_requests(Refused(1.0, rate_limit.per_second)))
    if auth.required:
        examples.append(too_many_requests(Refused(1.0, auth.refusals.per_second), "address"))
    refused = {
        **_error(
            "Over this key's rate limit, or too many requests without a valid key from this "
            "address; Retry-After says in how many seconds to try again",
            *((example.code, example.message) for example in examples[:1]),
        ),
        "headers": {
            "Retry-After": {
                "description": "Whole seconds to wait before the next request",
                "schema": {"type": "integer", "minimum": 1},
            }
        },
    }
    for operation in _keyed_operations(paths):
        operation["responses"]["429"] = refused


DESCRIPTION = """Scores English reviews as positive or negative.

**Errors.** Every error is a JSON object `{"error": {"code": ..., "message": ...}}`; the
`code` is stable, the message is for people. Every answer carries an `X-Request-ID`
header (send your own to choose it): quote it when asking for support.

**Retrying.** Retry a request that got no answer (connection refused or reset) and a
`503` (not ready, shutting down), with exponential backoff and jitter; scoring has no
side effect, so a retry is safe. A `429` means this key is over its rate limit: wait
the `Retry-After` seconds. Never retry another `4xx`: the same request gets the same
answer.
"""


def build_spec(
    limits: ServiceSettings, version: str, auth: AuthSettings, rate_limit: RateLimitSettings
) -> dict:
    predict = _scoring_operation(
        "Score one review (the original single-review API)",
        schemas.PredictRequest,
        schemas.PredictResponse,
        ({"review": "The food was great and the staff were lovely."},
         {"positive": 0.93, "negative": 0.07, "model_version": VERSION_EXAMPLE}),
        limits,
    )  # fmt: skip
    batch = _scoring_operation(
        "Score a batch of reviews",
        schemas.BatchPredictRequest,
        schemas.BatchPredictResponse,
        ({"reviews": ["Great food.", "The soup was cold."]},
         {"predictions": [{"label": "positive", "positive": 0.91, "negative": 0.09},
                          {"label": "negative", "positive": 0.12, "negative": 0.88}],
          "model_version": VERSION_EXAMPLE, "request_id": REQUEST_ID_EXAMPLE}),
        limits,
    )  # fmt: skip
    spec = {
        "openapi": "3.1.0",
        "info": {
            "title": "Sentiment API",
            "version": version,
            "description": DESCRIPTION,
        },
        "tags": [
            {"name": "scoring", "description": "Reviews in, scores out"},
            {"name": "feedback", "description": "The true labels of predictions"},
            {"name": "operations", "description": "Health, the model, metrics, this document"},
        ],
        "paths": {
            "/predict/": {"post": {**predict, "operationId": "predict"}},
            "/predict": {"post": {**predict, "operationId": "predictNoSlash"}},
            "/v1/predict": {"post": {**batch, "operationId": "predictBatch"}},
            "/v1/feedback": {
                "post": {
                    "summary": "Say what the true label of a prediction was",
                    "description": "Once per prediction (request id and item), with the key "
                    "that asked for it. Predictions are kept for a while, and are found here "
                    "within about a second of their answer.",
                    "operationId": "feedback",
                    "tags": ["feedback"],
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {
                                "schema": _ref(schemas.FeedbackRequest),
                                "example": {
                                    "request_id": REQUEST_ID_EXAMPLE,
                                    "item": 1,
                                    "label": 0,
                                },
                            }
                        },
                    },
                    "responses": {
                        "201": _json(
                            schemas.FeedbackResponse,
                            "Recorded",
                            {
                                "request_id": REQUEST_ID_EXAMPLE,
                                "item": 1,
                                "label": 0,
                                "predicted": 0,
                                "correct": True,
                                "model_version": VERSION_EXAMPLE,
                                "training_data": False,
                            },
                        ),
                        "400": _error(
                            "Body is not JSON, or fields are missing, unknown, of the "
                            "wrong type, or a label other than 0 or 1",
                            (
                                "invalid_request",
                                "invalid request: label: Value error, must be "
                                "0 (negative) or 1 (positive)",
                            ),
                        ),
                        "404": _error("No prediction of that request id and item, by this key"),
                        "409": _error("Feedback on that prediction was given already"),
                        "413": _error("Body is larger than monitoring.max_feedback_bytes"),
                        "422": _error("The review is not the one that was scored"),
                        "503": _error(
                            "Predictions are not recorded here (monitoring is off)",
                            (
                                "no_outcomes",
                                "predictions are not recorded here (monitoring is off)",
                            ),
                        ),
                    },
                }
            },
            "/healthz": {
                "get": {
                    "summary": "The process is alive",
                    "operationId": "healthz",
                    "tags": ["operations"],
                    "responses": {"200": _json(schemas.Health, "Alive", {"status": "ok"})},
                }
            },
            "/readyz": {
                "get": {
                    "summary": "A verified model is loaded",
                    "operationId": "readyz",
                    "tags": ["operations"],
                    "responses": {
                        "200": _json(
                            schemas.Ready,
                            "Ready",
                            {"status": "ready", "model_version": VERSION_EXAMPLE},
                        ),
                        "503": _error(
                            "Not ready; the message says why",
                            ("draining", "the service is shutting down"),
                        ),
                    },
                }
            },
            "/v1/model": {
                "get": {
                    "summary": "The model being served and the service around it",
                    "operationId": "modelInfo",
                    "tags": ["operations"],
                    "responses": {
                        "200": _json(schemas.ModelInfo, "Model metadata"),
                        "503": _error("No verified model is loaded"),
                    },
                }
            },
            "/metrics": {
                "get": {
                    "summary": "Prometheus metrics",
                    "operationId": "metrics",
                    "tags": ["operations"],
                    "responses": {
                        "200": {
                            "description": "Prometheus text format",
                            "content": {"text/plain": {"schema": {"type": "string"}}},
                        }
                    },
                }
            },
            "/openapi.json": {
                "get": {
                    "summary": "This document",
                    "operationId": "openapi",
                    "tags": ["operations"],
                    "responses": {
                        "200": {
                            "description": "OpenAPI 3.1",
                            "content": {"application/json": {"schema": {"type": "object"}}},
                        }
                    },
                }
            },
        },
        "components": {"schemas": _component_schemas(limits)},
    }
    if auth.required:
        _require_keys(spec["paths"])
        spec["components"]["securitySchemes"] = SECURITY_SCHEMES
    if rate_limit.enabled or auth.required:
        _limit_rates(spec["paths"], auth, rate_limit)
    return spec
