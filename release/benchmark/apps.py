"""The two reference apps the service is measured against.

floor_app: a constant JSON answer from Flask, served by the service's own gunicorn
    settings; nothing can be faster on this stack, so it is the 100% mark.
classic_app: the tutorial way, `joblib.load` of the model on every request under Flask's
    development server; what this project exists to improve on.
Both read the same request body as the service (`{"review": ...}`) and answer its shape.
"""

import os
from pathlib import Path

import joblib
from flask import Flask, jsonify, request

from model import ModelRegistry
from model.scoring import POSITIVE_CLASS

CONSTANT = {"label": "positive", "positive": 0.9, "negative": 0.1}


def floor_app() -> Flask:
    app = Flask("floor")

    @app.post("/predict/")
    def predict():  # type: ignore[no-untyped-def]
        request.get_data()
        return jsonify(CONSTANT)

    @app.get("/readyz")
    def ready():  # type: ignore[no-untyped-def]
        return jsonify({"status": "ready"})

    return app


def classic_app() -> Flask:
    """Loads the current bundle's pickled model for every request, as tutorials do."""
    registry = ModelRegistry(Path(os.environ.get("SENTIMENT_MODEL__REGISTRY_DIR", "models")))
    model_file = registry.path_of(registry.resolve("current")) / "model.joblib"
    app = Flask("classic")

    @app.post("/predict/")
    def predict():  # type: ignore[no-untyped-def]
        model = joblib.load(model_file)
        review = request.get_json(force=True)["review"]
        column = list(model.classes_).index(POSITIVE_CLASS)
        positive = float(model.predict_proba([review])[0, column])
        label = "positive" if positive >= 0.5 else "negative"
        return jsonify({"label": label, "positive": positive, "negative": 1 - positive})

    @app.get("/readyz")
    def ready():  # type: ignore[no-untyped-def]
        return jsonify({"status": "ready"})

    return app
