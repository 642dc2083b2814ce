"""The OpenAPI 3.1 document. Schemas come from service.schemas; limits from the config."""

from typing import Any

from pydantic.json_schema import models_json_schema

from service import schemas
from service.settings.schema import ServiceSettings

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


def _json(model: type, description: str) -> dict:
    return {"description": description, "content": {"application/json": {"schema": _ref(model)}}}


def _error(description: str) -> dict:
    return _json(schemas.ErrorResponse, description)


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


def _scoring_operation(summary: str, request_model: type, response_model: type) -> dict:
    return {
        "summary": summary,
        "requestBody": {
            "required": True,
            "description": "A JSON object. Read as JSON whatever the Content-Type says.",
            "content": {"application/json": {"schema": _ref(request_model)}},
        },
        "responses": {
            "200": _json(response_model, "Scores"),
            "400": _error("Body is not JSON, or fields are missing, unknown or of the wrong type"),
            "413": _error("Body is larger than the configured limit"),
            "422": _error("Empty or too long review, empty or too large batch"),
            "503": _error("No verified model is loaded"),
        },
    }


# Answered without an API key (service/auth.py OPEN_ENDPOINTS).
OPEN_PATHS = frozenset({"/healthz", "/readyz", "/openapi.json"})
SECURITY_SCHEMES = {
    "bearer": {"type": "http", "scheme": "bearer", "description": "Authorization: Bearer KEY"},
    "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
}


def _require_keys(paths: dict[str, dict]) -> None:
    for path, operations in paths.items():
        if path in OPEN_PATHS:
            continue
        for operation in operations.values():
            operation["security"] = [{"bearer": []}, {"apiKey": []}]
            operation["responses"]["401"] = _error("No valid API key (missing, wrong or revoked)")


RATE_LIMITED = {
    **_error("Over this key's rate limit; Retry-After says in how many seconds to try again"),
    "headers": {
        "Retry-After": {
            "description": "Whole seconds to wait before the next request",
            "schema": {"type": "integer", "minimum": 1},
        }
    },
}


def _limit_rates(paths: dict[str, dict]) -> None:
    for path, operations in paths.items():
        if path in OPEN_PATHS:
            continue
        for operation in operations.values():
            operation["responses"]["429"] = RATE_LIMITED


def build_spec(
    limits: ServiceSettings, version: str, auth_required: bool, rate_limited: bool
) -> dict:
    predict = _scoring_operation(
        "Score one review (the original single-review API)",
        schemas.PredictRequest,
        schemas.PredictResponse,
    )
    batch = _scoring_operation(
        "Score a batch of reviews", schemas.BatchPredictRequest, schemas.BatchPredictResponse
    )
    spec = {
        "openapi": "3.1.0",
        "info": {
            "title": "Sentiment API",
            "version": version,
            "description": "Scores English reviews as positive or negative. "
            'Every error is a JSON object {"error": {"code", "message"}}.',
        },
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
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": _ref(schemas.FeedbackRequest)}},
                    },
                    "responses": {
                        "201": _json(schemas.FeedbackResponse, "Recorded"),
                        "400": _error(
                            "Body is not JSON, or fields are missing, unknown, of the "
                            "wrong type, or a label other than 0 or 1"
                        ),
                        "404": _error("No prediction of that request id and item, by this key"),
                        "409": _error("Feedback on that prediction was given already"),
                        "413": _error("Body is larger than monitoring.max_feedback_bytes"),
                        "422": _error("The review is not the one that was scored"),
                        "503": _error("Predictions are not recorded here (monitoring is off)"),
                    },
                }
            },
            "/healthz": {
                "get": {
                    "summary": "The process is alive",
                    "operationId": "healthz",
                    "responses": {"200": _json(schemas.Health, "Alive")},
                }
            },
            "/readyz": {
                "get": {
                    "summary": "A verified model is loaded",
                    "operationId": "readyz",
                    "responses": {
                        "200": _json(schemas.Ready, "Ready"),
                        "503": _error("Not ready; the message says why"),
                    },
                }
            },
            "/v1/model": {
                "get": {
                    "summary": "The model being served and the service around it",
                    "operationId": "modelInfo",
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
    if auth_required:
        _require_keys(spec["paths"])
        spec["components"]["securitySchemes"] = SECURITY_SCHEMES
    if rate_limited:
        _limit_rates(spec["paths"])
    return spec
