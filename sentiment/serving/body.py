"""Request bodies as the server hands them over. A body the server cannot decode (chunked
encoding with a bad size or a missing line end, a client gone mid-body) is the client's
error: a 400 whoever reads it, the scoring endpoints or Flask, never a 500 and a
traceback."""

from sentiment.serving.answers import WSGIApp
from sentiment.serving.errors import BadRequest, PayloadTooLarge


class MalformedBody(BadRequest):
    code = "malformed_body"

    def __init__(self, error: Exception):
        super().__init__(f"the request body cannot be read ({type(error).__name__}): "
                         "send it with a valid Content-Length or chunked encoding")  # fmt: skip


class GuardedInput:
    """wsgi.input whose read errors are MalformedBody (what the server raises for a bad
    encoding is its own type, which no handler of ours could name)."""

    def __init__(self, stream):
        self._stream = stream

    def read(self, size: int = -1) -> bytes:
        try:
            return self._stream.read(size)
        except Exception as error:
            raise MalformedBody(error) from None

    def readline(self, size: int = -1) -> bytes:
        try:
            return self._stream.readline(size)
        except Exception as error:
            raise MalformedBody(error) from None

    def readlines(self, hint: int = -1) -> list[bytes]:
        try:
            return self._stream.readlines(hint)
        except Exception as error:
            raise MalformedBody(error) from None

    def __iter__(self):
        return iter(self.readline, b"")


def guard_bodies(app: WSGIApp) -> WSGIApp:
    def guarded(environ: dict, start_response):
        environ["wsgi.input"] = GuardedInput(environ["wsgi.input"])
        return app(environ, start_response)

    return guarded


def read_body(environ: dict, max_bytes: int) -> bytes:
    """The whole body, at most `max_bytes` (413 beyond, without reading it when its length
    says so): sent with a Content-Length, or chunked (read up to the limit)."""
    length = environ.get("CONTENT_LENGTH") or ""
    stream = environ["wsgi.input"]
    if length:
        if not (length.isascii() and length.isdigit()):
            raise BadRequest("Content-Length is not a number", "invalid_request")
        size = int(length)
        if size > max_bytes:
            raise PayloadTooLarge(f"request body exceeds {max_bytes} bytes")
        raw = stream.read(size)
        if len(raw) != size:
            raise MalformedBody(EOFError("the body ended early"))
        return raw
    if not environ.get("wsgi.input_terminated"):
        return b""  # no length, and a server that cannot tell where a body would end
    raw = stream.read(max_bytes + 1)
    if len(raw) > max_bytes:
        raise PayloadTooLarge(f"request body exceeds {max_bytes} bytes")
    return raw
