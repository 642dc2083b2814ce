"""Headers on every answer: they are data for programs, never sniffed as another type,
never cached."""

from collections.abc import Callable, Iterable

from sentiment.serving.answers import WSGIApp

SECURITY_HEADERS = (("X-Content-Type-Options", "nosniff"), ("Cache-Control", "no-store"))
NAMES = frozenset(name.lower() for name, _ in SECURITY_HEADERS)


def security_headers(app: WSGIApp) -> WSGIApp:
    def with_headers(environ: dict, start_response: Callable) -> Iterable[bytes]:
        def respond(status: str, headers: list, exc_info=None):  # type: ignore[no-untyped-def]
            # These, whatever an inner layer said (Flask's file answers set Cache-Control).
            headers[:] = [header for header in headers if header[0].lower() not in NAMES]
            headers.extend(SECURITY_HEADERS)
            return start_response(status, headers, exc_info)

        return app(environ, respond)

    return with_headers
