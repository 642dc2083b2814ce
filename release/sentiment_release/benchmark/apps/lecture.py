"""The lecture's app: the model `joblib.load`ed from the current bundle on every request,
under Flask's development server, as tutorials serve a model."""

import os
from pathlib import Path

import joblib
from flask import Flask, jsonify, request

from sentiment.model import ModelFolder
from sentiment.model.scoring import POSITIVE_CLASS


def create_app() -> Flask:
    registry = ModelFolder(Path(os.environ.get("SENTIMENT_MODEL__BUNDLES_DIR", "models")))
    model_file = registry.path_of(registry.resolve("current")) / "model.joblib"
    app = Flask("lecture")

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
