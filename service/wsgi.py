"""The WSGI entry point for gunicorn: the one place where an app is built on import."""

from service.app import create_app

app = create_app()
