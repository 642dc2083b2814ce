"""Per-key rate limits, one budget per API key id shared by every worker of a server.

Each key id has a generic cell rate (GCRA, a token bucket kept as one number): it may
send `burst` requests at once, then one each 1/`per_second` seconds. The numbers live in a
small table in the server's runtime directory (PROMETHEUS_MULTIPROC_DIR, emptied when
gunicorn starts), mapped into every worker, so two workers never give one key twice its
rate. A POSIX lock on the file serialises the workers (the kernel drops it if a worker
dies holding it); a thread lock serialises a worker's threads. Outside gunicorn (tests,
`flask run`) the table is the process's own.

Every request that is not an open endpoint counts as one, whatever it holds: a batch is
bounded by service.max_batch_size already. Without API keys (auth.required false) every
caller shares the budget of one id, ANONYMOUS. The API-key check keeps a second table,
of refusals per client address (sentiment/serving/auth.py).

A slot whose budget is whole again (its due time has passed) holds nothing a fresh slot
would not, so a new id may take it over: ids that come and go (client addresses) never
fill the table for good.
"""

import fcntl
import logging
import mmap
import os
import struct
import tempfile
import threading
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from sentiment.serving.answers import KEY_ID, WSGIApp, error_answer
from sentiment.serving.errors import TooManyRequests
from sentiment.serving.metrics import Metrics
from sentiment.serving.settings.schema import KeyLimit, RateLimitSettings

# Not a valid key id, so no key can share its budget.
ANONYMOUS = "-"
TABLE = "rate-limits.table"
REFUSALS_TABLE = "refusals.table"
# A slot: the key id (NUL-padded) and when its next request is due (GCRA's theoretical
# arrival time), in whole nanoseconds of the system's monotonic clock: sums of intervals
# stay exact however long the host has been up.
SLOT = struct.Struct("=32sq")
SLOTS = 4096
TABLE_BYTES = SLOT.size * SLOTS
logger = logging.getLogger(__name__)


def create_table(directory: Path, name: str = TABLE) -> Path:
    """An empty table in `directory` (gunicorn's master, before any worker exists)."""
    path = directory / name
    path.write_bytes(bytes(TABLE_BYTES))
    return path


@dataclass(frozen=True)
class Refused:
    """Over the limit: when to try again, and the limit that applies."""

    retry_after: float
    per_second: float


class RateLimiter:
    def __init__(
        self,
        settings: RateLimitSettings,
        table: IO[bytes],
        clock: Callable[[], int] = time.monotonic_ns,  # one clock for every process
    ):
        self._settings = settings
        self._clock = clock
        self._file = table  # kept open: closing any descriptor of it drops the lock
        self._memory = mmap.mmap(table.fileno(), TABLE_BYTES)
        self._threads = threading.Lock()
        self._slots: dict[str, int] = {}
        # key id -> (nanoseconds between requests, nanoseconds of burst), None: not limited.
        self._limits: dict[str, tuple[int, int] | None] = {}
        self._full_warned = False

    @classmethod
    def for_refusals(cls, limit: KeyLimit, **kwargs) -> "RateLimiter":
        """Refusals per client address, one budget each (sentiment/serving/auth.py)."""
        settings = RateLimitSettings(enabled=True, per_second=limit.per_second,
                                     burst=limit.burst, per_key={})  # fmt: skip
        return cls.for_server(settings, REFUSALS_TABLE, **kwargs)

    @classmethod
    def for_server(cls, settings: RateLimitSettings, table: str = TABLE, **kwargs) -> "RateLimiter":
        """On the server's shared table where there is one, else on one of its own."""
        directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
        path = Path(directory) / table if directory else None
        if path is not None and path.is_file() and path.stat().st_size == TABLE_BYTES:
            return cls(settings, path.open("r+b"), **kwargs)
        if directory:
            logger.warning("no rate-limit table in %s: this process keeps its own (workers "
                           "forked after this share it; others do not)", directory)  # fmt: skip
        table = tempfile.TemporaryFile()  # noqa: SIM115  (the limiter keeps it open)
        table.write(bytes(TABLE_BYTES))
        table.flush()
        return cls(settings, table, **kwargs)

    def admit(self, key_id: str | None) -> Refused | None:
        """None when the request of `key_id` (None: no key) is within its key's limit,
        which it then uses up; else how long to wait."""
        key_id = key_id or ANONYMOUS
        limit = self._limits.get(key_id, False)
        if limit is False:
            limit = self._limits[key_id] = self._limit(key_id)
        if limit is None:
            return None
        interval, tolerance = limit
        with self._threads:
            fcntl.lockf(self._file, fcntl.LOCK_EX)
            try:
                now = self._clock()
                slot = self._slot(key_id, now)
                if slot is None:
                    return None
                _, due = SLOT.unpack_from(self._memory, slot)
                next_due = max(due, now) + interval
                if next_due - now > tolerance:
                    return Refused((next_due - tolerance - now) / 1e9, 1e9 / interval)
                SLOT.pack_into(self._memory, slot, key_id.encode(), next_due)
                return None
            finally:
                fcntl.lockf(self._file, fcntl.LOCK_UN)

    def _limit(self, key_id: str) -> tuple[int, int] | None:
        settings = self._settings
        if not settings.enabled:
            return None
        if key_id in settings.per_key:
            limit = settings.per_key[key_id]
            if limit is None:
                return None
            per_second, burst = limit.per_second, limit.burst
        else:
            per_second, burst = settings.per_second, settings.burst
        interval = max(1, round(1e9 / per_second))
        return interval, burst * interval

    def _slot(self, key_id: str, now: int) -> int | None:
        """The offset of `key_id`'s slot, claimed if new (open addressing, under the lock):
        the first empty slot of its probe, or the first whose budget is whole again. Another
        process may have taken over a slot this one remembers, so its name is checked. A
        table full of busy ids admits new ones and warns."""
        name = key_id.encode()
        offset = self._slots.get(key_id)
        if offset is not None and self._memory[offset : offset + 32].rstrip(b"\0") == name:
            return offset
        start = zlib.crc32(name) % SLOTS
        idle = None
        for probe in range(SLOTS):
            offset = ((start + probe) % SLOTS) * SLOT.size
            held, due = SLOT.unpack_from(self._memory, offset)
            held = held.rstrip(b"\0")
            if held == name:
                self._slots[key_id] = offset
                return offset
            if not held:
                break
            if idle is None and due <= now:
                idle = offset
        else:
            offset = None
        if idle is not None:
            offset = idle
        if offset is None:
            if not self._full_warned:
                self._full_warned = True
                logger.warning("rate-limit table full (%s busy ids): new ids are not limited",
                               SLOTS)  # fmt: skip
            return None
        SLOT.pack_into(self._memory, offset, name, 0)
        self._slots[key_id] = offset
        return offset


def retry_after_header(refused: Refused) -> str:
    """Whole seconds, rounded up (HTTP's Retry-After has no fractions), at least 1."""
    return str(max(1, int(-(-refused.retry_after // 1))))


def too_many_requests(refused: Refused, whose: str = "key") -> TooManyRequests:
    """The 429 of a refusal: over a key's limit, or over its address's refusals."""
    retry_after = retry_after_header(refused)
    what = ("this key's rate limit" if whose == "key"
            else "the failed API-key checks allowed from this address")  # fmt: skip
    return TooManyRequests(
        f"over {what} of {refused.per_second:g} requests per second; retry after {retry_after} s",
        retry_after,
    )


class RateLimit:
    """The middleware: after the API-key check (the limit is the key's, and a caller
    without a valid key gets its 401 without using anyone's budget)."""

    def __init__(
        self,
        app: WSGIApp,
        limiter: RateLimiter,
        metrics: Metrics,
        is_open: Callable[[dict], bool],
    ):
        self._app = app
        self._limiter = limiter
        self._metrics = metrics
        self._is_open = is_open

    def __call__(self, environ: dict, start_response: Callable):
        if self._is_open(environ):
            return self._app(environ, start_response)
        key_id = environ.get(KEY_ID)
        refused = self._limiter.admit(key_id)
        if refused is not None:
            self._metrics.count_rate_limited(key_id or ANONYMOUS)
            return error_answer(start_response, too_many_requests(refused))
        return self._app(environ, start_response)
