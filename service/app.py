"""The app factory. `create_app` is the only way in; nothing happens at import time.
The scoring endpoints' common case is answered in front of Flask (service/fast_path.py)."""

from flask import Flask, Response

from service.api import api
from service.auth import load_keyring, register_auth
from service.docs import docs
from service.errors import register_error_handlers
from service.fast_path import FastPath
from service.feedback import feedback
from service.logs import configure_logging
from service.page import page
from service.rate_limit import RateLimiter, register_rate_limit
from service.request_log import register_request_logging
from service.settings import Settings, load_settings
from service.state import init_state, load_scorer


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
    register_request_logging(app, state.metrics)
    if settings.auth.required:
        register_auth(app, keyring, state.metrics)
    limiter = RateLimiter.for_server(settings.rate_limit) if settings.rate_limit.enabled else None
    if limiter is not None:
        register_rate_limit(app, limiter, state.metrics)
    app.register_blueprint(api)
    app.register_blueprint(feedback)
    if settings.service.try_it_page:
        app.register_blueprint(page)
    if settings.service.api_docs:
        app.register_blueprint(docs)
    app.after_request(_security_headers)
    app.wsgi_app = FastPath(app.wsgi_app, state, keyring, limiter, SECURITY_HEADERS)  # type: ignore[method-assign]
    return app


# Answers are data for programs: never sniffed as another type, never cached.
SECURITY_HEADERS = {"X-Content-Type-Options": "nosniff", "Cache-Control": "no-store"}


def _security_headers(response: Response) -> Response:
    response.headers.update(SECURITY_HEADERS)
    return response
