"""The scoring endpoints, POST /predict/ (also /predict) and /v1/predict: a plain WSGI
application, their only implementation, 4xx answers included. Flask's request and
response machinery cost several times what scoring a review does, so these, nearly all
the traffic, never reach it; the concerns every endpoint shares (request id and access
line, API key, rate limit, headers) are the middlewares in front of both
(sentiment/serving/app.py composes them)."""

import logging
import time
from collections.abc import Callable, Iterable
from typing import Any

from sentiment.model import Scorer
from sentiment.model.scoring import Prediction
from sentiment.serving import schemas
from sentiment.serving.answers import KEY_ID, REQUEST_ID, STARTED, answer, error_answer, json_body
from sentiment.serving.body import read_body
from sentiment.serving.errors import APIError, InternalError, MethodNotAllowed
from sentiment.serving.recorder import Scored
from sentiment.serving.soft_launch import ANSWERED_BY_HEADER
from sentiment.serving.state import ServiceState
from sentiment.serving.validation import check_batch, check_review, decode_json, parse

SINGLE, BATCH = "/predict/", "/v1/predict"
# Path -> its route (the metrics' and the access line's name for it).
ROUTES = {"/predict/": SINGLE, "/predict": SINGLE, "/v1/predict": BATCH}

logger = logging.getLogger(__name__)


class PredictApp:
    def __init__(self, state: ServiceState):
        self._state = state
        limits = state.settings.service
        self._max_body, self._max_batch = limits.max_body_bytes, limits.max_batch_size
        self._max_chars, self._log_texts = limits.max_review_chars, limits.log_review_text

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        route = ROUTES[environ["PATH_INFO"]]
        try:
            if environ["REQUEST_METHOD"] != "POST":
                raise MethodNotAllowed(f"{route} answers POST only", allow="POST")
            scorer = self._state.ready_scorer()
            texts = self._texts(route, read_body(environ, self._max_body))
            return self._answer(route, environ, start_response, scorer, texts)
        except APIError as error:
            return error_answer(start_response, error)
        except Exception:
            logger.exception("unhandled error")
            return error_answer(start_response, InternalError("internal server error"))

    def _texts(self, route: str, raw: bytes) -> list[str]:
        """The reviews; BadRequest or Unprocessable as validation.py words them. A body of
        the documented shape is taken as it is; any other goes through the schema, whose
        errors say what is wrong."""
        payload: Any = decode_json(raw)
        if route == SINGLE:
            review = payload.get("review") if type(payload) is dict and len(payload) == 1 else None
            if type(review) is not str:
                review = parse(schemas.PredictRequest, payload).review
            check_review(review, "review", self._max_chars)
            return [review]
        reviews = payload.get("reviews") if type(payload) is dict and len(payload) == 1 else None
        if type(reviews) is not list or any(type(item) is not str for item in reviews):
            reviews = parse(schemas.BatchPredictRequest, payload).reviews
        check_batch(reviews, self._max_batch, self._max_chars)
        return reviews

    def _answer(
        self,
        route: str,
        environ: dict,
        start_response: Callable,
        scorer: Scorer,
        texts: list[str],
    ) -> list[bytes]:
        state = self._state
        request_id, key_id = environ[REQUEST_ID], environ.get(KEY_ID)
        launch = state.soft_launch
        challenger = launch.answering(key_id, request_id)
        answering = challenger or scorer
        predictions = answering.predict(texts)
        if route == SINGLE:
            document = single_answer(predictions[0], answering.version)
        else:
            document = batch_answer(predictions, answering.version, request_id)
        state.metrics.count_predictions(predictions)
        if self._log_texts:  # only on request, and only at DEBUG: review texts are customer data
            logger.debug("reviews scored", extra={"reviews": texts, "request_id": request_id})
        answered_by = "challenger" if challenger else "champion"
        state.recorder.record(Scored(
            time.time(), request_id, key_id, texts, predictions,
            time.perf_counter() - environ[STARTED], answering, answered_by,
            launch.shadowing(request_id),
        ))  # fmt: skip
        said = [(ANSWERED_BY_HEADER, answered_by)] if launch.says_who_answered else []
        return answer(start_response, 200, json_body(document), said)


# The answers' shapes are schemas.PredictResponse and BatchPredictResponse (the OpenAPI
# document's); built as plain dicts, since a model per scored review cost more than
# scoring it.


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
