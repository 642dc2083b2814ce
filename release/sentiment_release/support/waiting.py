"""Waiting for something to happen, with a deadline: the one polling loop."""

import time
from collections.abc import Callable
from typing import TypeVar

from sentiment_release.support.errors import ReleaseError

T = TypeVar("T")


class WaitTimeout(ReleaseError):
    pass


def wait_until(
    probe: Callable[[], T | None],
    *,
    timeout: float,
    interval: float = 0.25,
    what: str | Callable[[], str] = "the condition",
) -> T:
    """Calls `probe` until it returns something other than None and returns that. A probe
    that raises stops the wait. After `timeout` seconds: WaitTimeout naming `what` (a
    callable is asked only then, so it can describe the last state it saw)."""
    deadline = time.monotonic() + timeout
    while True:
        found = probe()
        if found is not None:
            return found
        if time.monotonic() >= deadline:
            described = what() if callable(what) else what
            raise WaitTimeout(f"{described}: still not so after {timeout:g}s")
        time.sleep(interval)
