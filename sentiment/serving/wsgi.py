"""The WSGI entry point for gunicorn: the one place where an app is built on import."""

from sentiment.serving.app import create_app

app = create_app()
