"""The app factory. `create_app` is the only way in; nothing happens at import time.

One pipeline, outermost first: security headers, request id and access line (and a
guard that makes unreadable bodies 400s), the API-key check, the rate limit, then the
scoring endpoints (sentiment/serving/predict.py, plain WSGI) or Flask for everything else.
"""

from collections.abc import Callable

from flask import Flask
from werkzeug.exceptions import HTTPException

from sentiment.serving.answers import WSGIApp
from sentiment.serving.api import api
from sentiment.serving.auth import ApiKeyCheck, load_keyring, open_requests
from sentiment.serving.body import guard_bodies
from sentiment.serving.docs import docs
from sentiment.serving.errors import register_error_handlers
from sentiment.serving.feedback import feedback
from sentiment.serving.headers import security_headers
from sentiment.serving.logs import configure_logging
from sentiment.serving.page import page
from sentiment.serving.predict import ROUTES, PredictApp
from sentiment.serving.rate_limit import RateLimit, RateLimiter
from sentiment.serving.request_log import RequestLog
from sentiment.serving.settings import Settings, load_settings
from sentiment.serving.state import init_state, load_scorer


def create_app(settings: Settings | None = None) -> Flask:
    settings = settings or load_settings()
    configure_logging(settings.service.log_level)

    # The page's assets are served by its blueprint, only where the page is on.
    app = Flask(__name__, static_folder=None)
    app.config.update(
        DEBUG=settings.service.debug,
        MAX_CONTENT_LENGTH=settings.service.max_body_bytes,
    )
    scorer, not_ready_reason = load_scorer(settings)
    keyring = None
    if settings.auth.required:
        keyring, keys_missing = load_keyring(settings)
        not_ready_reason = not_ready_reason or keys_missing
    state = init_state(app, settings, scorer, not_ready_reason)

    register_error_handlers(app)
    app.register_blueprint(api)
    app.register_blueprint(feedback)
    if settings.service.try_it_page:
        app.register_blueprint(page)
    if settings.service.api_docs:
        app.register_blueprint(docs)

    pipeline = _scoring_or(PredictApp(state), app.wsgi_app)
    is_open = open_requests(settings)
    if settings.rate_limit.enabled:
        limiter = RateLimiter.for_server(settings.rate_limit)
        pipeline = RateLimit(pipeline, limiter, state.metrics, is_open)
    if settings.auth.required:
        refusals = RateLimiter.for_refusals(settings.auth.refusals)
        pipeline = ApiKeyCheck(pipeline, keyring, state.metrics, is_open, refusals)
    pipeline = RequestLog(guard_bodies(pipeline), state.metrics, _route_namer(app))
    app.wsgi_app = security_headers(pipeline)  # type: ignore[method-assign]
    return app


def _scoring_or(scoring: WSGIApp, flask: WSGIApp) -> WSGIApp:
    def route(environ: dict, start_response: Callable):
        if environ.get("PATH_INFO") in ROUTES:
            return scoring(environ, start_response)
        return flask(environ, start_response)

    return route


def _route_namer(app: Flask) -> Callable[[dict], str]:
    """A request's route for metrics and logs: the URL rule it matches, or "unmatched"
    (never the path, which the client chooses)."""

    def route_of(environ: dict) -> str:
        route = ROUTES.get(environ.get("PATH_INFO", ""))
        if route is not None:
            return route
        try:
            rule, _ = app.url_map.bind_to_environ(environ).match(return_rule=True)
        except (HTTPException, ValueError):
            return "unmatched"
        return rule.rule

    return route_of
