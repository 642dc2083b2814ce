"""The endpoints besides scoring (which is sentiment/serving/predict.py): health, readiness, the
model, metrics and the API's description."""

from flask import Blueprint, Response, jsonify, request

from sentiment.serving import schemas
from sentiment.serving.answers import KEY_ID
from sentiment.serving.errors import NotReady
from sentiment.serving.lifecycle import draining
from sentiment.serving.state import get_state

api = Blueprint("api", __name__)


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
    state = get_state()
    auth = state.settings.auth
    per_key = not auth.required or request.environ.get(KEY_ID) in auth.operator_keys
    body, content_type = state.metrics.render(per_key)
    return Response(body, content_type=content_type)


@api.get("/openapi.json")
def openapi() -> Response:
    """Made once, at start (sentiment/serving/state.py): open to anyone, it must cost next
    to nothing."""
    return Response(get_state().openapi, content_type="application/json")
