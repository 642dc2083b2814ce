"""The WSGI entry point for gunicorn: the one place where an app is built on import."""

from service import create_app

app = create_app()
