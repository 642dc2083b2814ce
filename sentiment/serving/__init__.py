"""The sentiment API: the serving runtime. `sentiment.serving.app.create_app` builds it; importing
this package does nothing else (gunicorn_conf imports settings from here before the app,
and prometheus-client must not be imported before it has set the metrics directory)."""
