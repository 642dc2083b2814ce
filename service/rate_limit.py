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
caller shares the budget of one id, ANONYMOUS.
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

from flask import Flask, g, request

from service.auth import OPEN_ENDPOINTS
from service.errors import TooManyRequests
from service.metrics import Metrics
from service.settings.schema import RateLimitSettings

# Not a valid key id, so no key can share its budget.
ANONYMOUS = "-"
TABLE = "rate-limits.table"
# A slot: the key id (NUL-padded) and when its next request is due (GCRA's theoretical
# arrival time), in whole nanoseconds of the system's monotonic clock: sums of intervals
# stay exact however long the host has been up.
SLOT = struct.Struct("=32sq")
SLOTS = 4096
TABLE_BYTES = SLOT.size * SLOTS
# The WSGI environ key where the fast path leaves its decision (None or Refused).
DECIDED = "sentiment.rate_limit"
UNDECIDED = object()

logger = logging.getLogger(__name__)


def create_table(directory: Path) -> Path:
    """An empty table in `directory` (gunicorn's master, before any worker exists)."""
    path = directory / TABLE
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
    def for_server(cls, settings: RateLimitSettings, **kwargs) -> "RateLimiter":
        """On the server's shared table where there is one, else on one of its own."""
        directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
        path = Path(directory) / TABLE if directory else None
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
                slot = self._slot(key_id)
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

    def _slot(self, key_id: str) -> int | None:
        """The offset of `key_id`'s slot, claimed if new (open addressing; under the lock).
        Key ids come from the key ring, so they fit; a full table admits and warns."""
        offset = self._slots.get(key_id)
        if offset is not None:
            return offset
        name = key_id.encode()
        start = zlib.crc32(name) % SLOTS
        for probe in range(SLOTS):
            offset = ((start + probe) % SLOTS) * SLOT.size
            held = self._memory[offset : offset + 32].rstrip(b"\0")
            if held in (name, b""):
                if not held:
                    SLOT.pack_into(self._memory, offset, name, 0)
                self._slots[key_id] = offset
                return offset
        if not self._full_warned:
            self._full_warned = True
            logger.warning("rate-limit table full (%s key ids): new ids are not limited", SLOTS)
        return None


def retry_after_header(refused: Refused) -> str:
    """Whole seconds, rounded up (HTTP's Retry-After has no fractions), at least 1."""
    return str(max(1, int(-(-refused.retry_after // 1))))


def too_many_requests(refused: Refused) -> TooManyRequests:
    """The 429 of a refusal, as the fast path and Flask both answer it."""
    retry_after = retry_after_header(refused)
    return TooManyRequests(
        f"over this key's rate limit of {refused.per_second:g} requests per second; "
        f"retry after {retry_after} s",
        retry_after,
    )


def register_rate_limit(app: Flask, limiter: RateLimiter, metrics: Metrics) -> None:
    """Call after the API-key hook: the limit is the key's, and a caller without a valid key
    gets its 401 without using anyone's budget. A request the fast path (service/fast_path.py)
    admitted already carries its decision in the environ (it answers its refusals itself)."""

    @app.before_request
    def _limit() -> None:
        if request.endpoint in OPEN_ENDPOINTS:
            return
        key_id = g.get("key_id")
        decided = request.environ.get(DECIDED, UNDECIDED)
        refused = limiter.admit(key_id) if decided is UNDECIDED else decided
        if refused is not None:
            metrics.count_rate_limited(key_id or ANONYMOUS)
            raise too_many_requests(refused)
