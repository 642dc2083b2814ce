"""The try-it page at /: type a review, see its score, label, model and environment. Plain
HTML, CSS and JavaScript from this package (no CDN), calling the API the clients use;
registered only where config says (service.try_it_page: on in dev, test and stage).
Where the API needs keys, the page asks for one and keeps it in the page only."""

from flask import Blueprint, Response, make_response, render_template

from sentiment.serving.state import get_state

page = Blueprint("page", __name__, static_folder="static", static_url_path="/static")

# The page runs its own script and styles and talks to this origin only.
POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)


@page.get("/")
def try_it() -> Response:
    settings = get_state().settings
    response = make_response(
        render_template(
            "try-it.html",
            max_chars=settings.service.max_review_chars,
            needs_key=settings.auth.required,
        )
    )
    response.headers["Content-Security-Policy"] = POLICY
    response.headers["X-Frame-Options"] = "DENY"
    return response
