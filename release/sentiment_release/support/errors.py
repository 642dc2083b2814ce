"""The one kind of failure the release tooling reports as a message and a non-zero exit."""


class ReleaseError(Exception):
    """Something the user can act on; the message says what and how."""
