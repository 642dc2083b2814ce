"""The release tooling's one notion of time: UTC, written one way everywhere."""

from datetime import UTC, datetime
from typing import Annotated

from pydantic import AwareDatetime, PlainSerializer

FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


def utc_now() -> datetime:
    return datetime.now(UTC)


def timestamp(moment: datetime) -> str:
    """2026-11-27T16:31:53.123456Z: RFC 3339, UTC, microseconds."""
    return moment.astimezone(UTC).strftime(FORMAT)


def compact(moment: datetime) -> str:
    """20261127T163153123456Z: sorts by time, safe in file names and ids."""
    return moment.astimezone(UTC).strftime("%Y%m%dT%H%M%S%fZ")


# A record's time: any RFC 3339 time with an offset on the way in, `timestamp` on the way out.
Timestamp = Annotated[AwareDatetime, PlainSerializer(timestamp, return_type=str)]
