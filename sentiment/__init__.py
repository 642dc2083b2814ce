"""The serving runtime: the model layer (sentiment.model: a bundle read, verified, scored)
and the HTTP service over it (sentiment.serving). The image installs this and nothing of
the release tooling (sentiment_release)."""
