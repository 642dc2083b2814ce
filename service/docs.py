"""Interactive API docs at /docs: Swagger UI over /openapi.json. Its files come from the
flask-swagger-ui package, installed in the image (no CDN); the page and the script that
starts it are ours, so a strict Content-Security-Policy holds (no inline script, this
origin only). Registered only where config says (service.api_docs)."""

from importlib.resources import files

from flask import Blueprint, Response, make_response, render_template, send_from_directory

SWAGGER_UI = files("flask_swagger_ui") / "dist"
HERE = files("service")

docs = Blueprint(
    "docs", __name__, url_prefix="/docs", static_folder=str(SWAGGER_UI), static_url_path="/ui"
)

# Swagger UI styles elements inline and draws icons from data: URLs; scripts and
# requests stay on this origin.
POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'"
)


@docs.get("/", strict_slashes=False)  # /docs as well, no redirect
def page() -> Response:
    response = make_response(render_template("docs.html"))
    response.headers["Content-Security-Policy"] = POLICY
    response.headers["X-Frame-Options"] = "DENY"
    return response


@docs.get("/docs.js")
def script() -> Response:
    return send_from_directory(str(HERE / "static"), "docs.js")
