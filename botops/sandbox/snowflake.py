"""Snowflake ids as Discord makes them: milliseconds since 2015 in the top bits, a counter below."""

from __future__ import annotations

import itertools
import time
from datetime import UTC, datetime

__all__ = ["DISCORD_EPOCH_MS", "SnowflakeFactory", "iso_timestamp", "snowflake_time"]

DISCORD_EPOCH_MS = 1_420_070_400_000


class SnowflakeFactory:
    """Hand out unique, increasing snowflakes for one sandbox."""

    def __init__(self, worker: int = 1) -> None:
        self._worker = worker & 0x1F
        self._counter = itertools.count()
        self._last = 0

    def next(self) -> int:
        """Return a new snowflake, strictly greater than every one returned before."""
        stamp = int(time.time() * 1000) - DISCORD_EPOCH_MS
        value = (stamp << 22) | (self._worker << 17) | (next(self._counter) & 0xFFF)
        # Two ids in one millisecond past 4096 would wrap the counter; keep them ordered anyway.
        self._last = max(value, self._last + 1)
        return self._last


def snowflake_time(snowflake: int) -> datetime:
    """Return the moment a snowflake was made."""
    return datetime.fromtimestamp(((snowflake >> 22) + DISCORD_EPOCH_MS) / 1000, tz=UTC)


def iso_timestamp(moment: datetime | None = None) -> str:
    """Return ``moment`` (default now) in the ISO 8601 form Discord sends."""
    return (moment or datetime.now(UTC)).isoformat()
