"""POST /v1/feedback: the true label of a prediction, from the client that asked for it.

Feedback names a prediction by its request id (and, for a batch, its item) and is found
only among those made with the same API key: one client cannot label another's. It is
recorded once; again, with the same label or another, it is a 409 and changes nothing.
A review sent with it must be the one that was scored (its sha256), and then the feedback
is training data for the next model (`sentiment feedback export`).
"""

import logging
import sqlite3

from flask import Blueprint, Response, jsonify, request

from sentiment.serving import schemas
from sentiment.serving.answers import KEY_ID
from sentiment.serving.errors import APIError, NotReady, PayloadTooLarge, Unprocessable
from sentiment.serving.outcomes import DuplicateFeedback, OutcomeStore, input_sha256, storable
from sentiment.serving.state import get_state
from sentiment.serving.validation import parse, read_json

feedback = Blueprint("feedback", __name__)
logger = logging.getLogger(__name__)


class UnknownPrediction(APIError):
    status = 404


class Conflict(APIError):
    status = 409


@feedback.post("/v1/feedback")
def give_feedback() -> Response:
    state = get_state()
    monitoring = state.settings.monitoring
    if not monitoring.enabled:
        raise NotReady("predictions are not recorded here (monitoring is off)", "no_outcomes")
    if (request.content_length or 0) > monitoring.max_feedback_bytes:
        raise PayloadTooLarge(f"feedback bodies are at most {monitoring.max_feedback_bytes} bytes")
    body = parse(schemas.FeedbackRequest, read_json(request, monitoring.max_feedback_bytes))
    if len(request.get_data(cache=True)) > monitoring.max_feedback_bytes:
        raise PayloadTooLarge(f"feedback bodies are at most {monitoring.max_feedback_bytes} bytes")
    key_id = request.environ.get(KEY_ID) or ""
    store = OutcomeStore(monitoring.dir, monitoring.recent_predictions, monitoring.feedback_kept)
    try:
        prediction = store.recorded(key_id, body.request_id, body.item)
        if prediction is None:
            raise UnknownPrediction(
                f"no prediction with request id {body.request_id!r}, item {body.item}, was "
                "recorded for this key (a prediction is recorded within about a second of "
                "its answer, and kept until this key's newer ones push it out)",
                "unknown_request_id",
            )
        review = None
        if body.review is not None:
            if input_sha256(body.review) != prediction.input_sha256:
                raise Unprocessable("the review is not the one that was scored",
                                    "review_mismatch")  # fmt: skip
            review = storable(body.review)
        try:
            store.add_feedback(key_id, body.request_id, body.item, body.label, prediction, review)
        except DuplicateFeedback as duplicate:
            same = duplicate.existing.label == body.label
            raise Conflict(
                f"feedback on this prediction was given already (label "
                f"{duplicate.existing.label}){'' if same else '; it is not changed'}",
                "duplicate_feedback" if same else "conflicting_feedback",
            ) from None
    except (sqlite3.Error, OSError) as error:
        logger.error("feedback not recorded: the outcome store failed: %s", error)
        raise NotReady("the outcome store cannot be used right now", "no_outcomes") from None
    finally:
        store.close()
    correct = body.label == prediction.predicted
    state.metrics.count_feedback(correct)
    answer = schemas.FeedbackResponse(
        request_id=body.request_id, item=body.item, label=body.label,
        predicted=prediction.predicted, correct=correct, model_version=prediction.model_version,
        training_data=(review or prediction.review) is not None,
    )  # fmt: skip
    response = jsonify(answer.model_dump())
    response.status_code = 201
    return response
