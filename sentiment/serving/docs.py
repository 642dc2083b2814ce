"""Interactive API docs at /docs: Swagger UI over /openapi.json. Its files come from the
flask-swagger-ui package, installed in the image (no CDN); the page and the script that
starts it are ours, so a strict Content-Security-Policy holds (no inline script, this
origin only). Only the files the page uses are served. Registered only where config says
(service.api_docs)."""

from importlib.resources import files

from flask import Blueprint, Response, abort, make_response, render_template, send_from_directory

SWAGGER_UI = files("flask_swagger_ui") / "dist"
HERE = files("sentiment.serving")
# What docs.html loads of Swagger UI's folder; the rest of it (an OAuth redirect page,
# other bundles) is not served.
UI_FILES = frozenset({"swagger-ui.css", "swagger-ui-bundle.js", "favicon-32x32.png"})

docs = Blueprint("docs", __name__, url_prefix="/docs")

# Swagger UI styles elements inline and draws icons from data: URLs; scripts and
# requests stay on this origin.
POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'"
)


@docs.get("/", strict_slashes=False)  # /docs as well, no redirect
def page() -> Response:
    return make_response(render_template("docs.html"))


@docs.get("/ui/<name>")
def ui(name: str) -> Response:
    if name not in UI_FILES:
        abort(404)
    return send_from_directory(str(SWAGGER_UI), name)


@docs.get("/docs.js")
def script() -> Response:
    return send_from_directory(str(HERE / "static"), "docs.js")


@docs.after_request
def _policy(response: Response) -> Response:
    response.headers["Content-Security-Policy"] = POLICY
    response.headers["X-Frame-Options"] = "DENY"
    return response
