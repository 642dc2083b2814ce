"""The Flask floor: the bare floor's constant answer from a Flask view, which is what
Flask's request and response machinery costs on the same gunicorn worker settings."""

from flask import Flask, jsonify, request

from sentiment_release.benchmark.apps.wsgi_floor import ANSWER, READY


def create_app() -> Flask:
    app = Flask("flask_floor")

    @app.post("/predict/")
    def predict():  # type: ignore[no-untyped-def]
        request.get_data()
        return jsonify(ANSWER)

    @app.get("/readyz")
    def ready():  # type: ignore[no-untyped-def]
        return jsonify(READY)

    return app
