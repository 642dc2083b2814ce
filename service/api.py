"""The HTTP endpoints. Handlers validate, call the scorer, and shape the response."""

import logging
import time

from flask import Blueprint, Response, g, jsonify, request

from model import Scorer
from model.scoring import Prediction
from service import schemas
from service.errors import NotReady
from service.lifecycle import draining
from service.openapi import build_spec
from service.recorder import Scored
from service.soft_launch import ANSWERED_BY_HEADER
from service.state import get_state
from service.validation import check_batch, check_review, parse, read_json

api = Blueprint("api", __name__)
logger = logging.getLogger(__name__)


def _log_reviews(texts: list[str]) -> None:
    # Only on request, and only at DEBUG: review texts are customer data.
    if get_state().settings.service.log_review_text:
        logger.debug("reviews scored", extra={"reviews": texts})


def _answering(state, champion: Scorer) -> tuple[Scorer, str]:
    """The model that answers this request (soft launch: the challenger for a canary's
    share of the clients), and its role; as the fast path chooses."""
    challenger = state.soft_launch.answering(g.get("key_id"), g.request_id)
    return (challenger, "challenger") if challenger else (champion, "champion")


def _answered(response: Response, answered_by: str) -> Response:
    if get_state().soft_launch.says_who_answered:
        response.headers[ANSWERED_BY_HEADER] = answered_by
    return response


def _record(
    texts: list[str], predictions: list[Prediction], scorer: Scorer, answered_by: str
) -> None:
    """Hands the answered request to the monitoring recorder (as the fast path does)."""
    state = get_state()
    seconds = time.perf_counter() - g.started
    state.recorder.record(Scored(
        time.time(), g.request_id, g.get("key_id"), texts, predictions, seconds, scorer,
        answered_by, state.soft_launch.shadowing(g.request_id),
    ))  # fmt: skip


# strict_slashes=False: /predict answers too, without a redirect curl would not follow.
@api.post("/predict/", strict_slashes=False)
def predict_one() -> Response:
    """The original API: one review in, {"positive": p, "negative": 1 - p} out."""
    state = get_state()
    scorer = state.ready_scorer()
    limits = state.settings.service
    body = parse(schemas.PredictRequest, read_json(request, limits.max_body_bytes))
    check_review(body.review, "review", limits.max_review_chars)
    answering, answered_by = _answering(state, scorer)
    predictions = answering.predict([body.review])
    state.metrics.count_predictions(predictions)
    _log_reviews([body.review])
    _record([body.review], predictions, answering, answered_by)
    return _answered(jsonify(single_answer(predictions[0], answering.version)), answered_by)


@api.post("/v1/predict")
def predict_batch() -> Response:
    state = get_state()
    scorer = state.ready_scorer()
    limits = state.settings.service
    body = parse(schemas.BatchPredictRequest, read_json(request, limits.max_body_bytes))
    check_batch(body.reviews, limits.max_batch_size, limits.max_review_chars)
    answering, answered_by = _answering(state, scorer)
    predictions = answering.predict(body.reviews)
    state.metrics.count_predictions(predictions)
    _log_reviews(body.reviews)
    _record(body.reviews, predictions, answering, answered_by)
    answer = batch_answer(predictions, answering.version, g.request_id)
    return _answered(jsonify(answer), answered_by)


# The answers' shapes are schemas.PredictResponse and BatchPredictResponse (the OpenAPI
# document's); built as plain dicts, since a model per scored review cost more than
# scoring it. Flask's views and the fast path (service/fast_path.py) both answer these.


def single_answer(prediction: Prediction, model_version: str) -> dict:
    return {
        "positive": prediction.positive,
        "negative": prediction.negative,
        "model_version": model_version,
    }


def batch_answer(predictions: list[Prediction], model_version: str, request_id: str) -> dict:
    return {
        "predictions": [
            {"label": p.label, "positive": p.positive, "negative": p.negative} for p in predictions
        ],
        "model_version": model_version,
        "request_id": request_id,
    }


@api.get("/healthz")
def healthz() -> Response:
    """The process is alive; says nothing about the model (that is /readyz)."""
    return jsonify(schemas.Health(status="ok").model_dump())


@api.get("/readyz")
def readyz() -> Response:
    if draining():
        raise NotReady("the service is shutting down", "draining")
    scorer = get_state().ready_scorer()
    return jsonify(schemas.Ready(status="ready", model_version=scorer.version).model_dump())


@api.get("/v1/model")
def model_info() -> Response:
    state = get_state()
    scorer = state.ready_scorer()
    metadata = scorer.metadata
    build = state.settings.build
    response = schemas.ModelInfo(
        model=schemas.ModelDescription(
            version=metadata.version,
            sha256=metadata.sha256,
            trained_at=metadata.created_at,
            git_commit=metadata.git_commit,
            threshold=metadata.threshold,
            labels=metadata.labels,
            metrics=metadata.metrics,
            dataset=metadata.dataset,
            hyperparameters=metadata.hyperparameters,
            scorer=scorer.engine,
        ),
        service=schemas.ServiceDescription(
            environment=state.settings.environment,
            version=state.package_version,
            git_commit=build.git_commit,
            build_id=build.build_id,
        ),
    )
    return jsonify(response.model_dump(mode="json"))


@api.get("/metrics")
def metrics() -> Response:
    body, content_type = get_state().metrics.render()
    return Response(body, content_type=content_type)


@api.get("/openapi.json")
def openapi() -> Response:
    state = get_state()
    settings = state.settings
    return jsonify(build_spec(settings.service, state.package_version, settings.auth.required,
                              settings.rate_limit))  # fmt: skip
