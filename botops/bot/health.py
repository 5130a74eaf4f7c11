"""The bot's health, checked the same way for ``/health`` and, later, ``/status`` and ``botops health``.

Each check is real: the database answers a query and reports its schema revision, the latency is the
gateway's heartbeat round trip, memory is the process's resident set.
"""

from __future__ import annotations

import asyncio
import logging
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import psutil

from botops import __version__
from botops.db.engine import pinged
from botops.db.migrate import schema_state_on
from botops.version import git_commit

if TYPE_CHECKING:
    from botops.bot.core import Bot

__all__ = ["LATENCY_THRESHOLD_MS", "HealthReport", "collect_health"]

log = logging.getLogger(__name__)

#: The handbook's line between a healthy and a slow gateway.
LATENCY_THRESHOLD_MS = 200.0
#: Seconds the database may take to answer before the check reports it as failed.
DATABASE_TIMEOUT = 2.0


@dataclass(frozen=True)
class HealthReport:
    """What ``/health`` shows."""

    database_ok: bool
    database_ms: float | None
    database_error: str | None
    schema_current: bool
    schema_revision: str | None
    latency_ms: float | None
    extensions: list[str]
    failed_extensions: dict[str, str]
    uptime_seconds: float
    version: str
    commit: str
    memory_bytes: int
    shard_latencies_ms: dict[int, float] = field(default_factory=dict)

    @property
    def latency_ok(self) -> bool:
        return self.latency_ms is not None and self.latency_ms < LATENCY_THRESHOLD_MS

    @property
    def healthy(self) -> bool:
        return self.database_ok and self.schema_current and self.latency_ok and not self.failed_extensions


def _milliseconds(seconds: float) -> float | None:
    return None if math.isnan(seconds) or math.isinf(seconds) else round(seconds * 1000, 1)


async def collect_health(bot: Bot) -> HealthReport:
    """Run every check once and return the report; a failing check is reported, never raised."""
    database_ms: float | None = None
    error: str | None = None
    schema_current = False
    revision: str | None = None
    try:
        async with asyncio.timeout(DATABASE_TIMEOUT):  # a hung database is a failed check, not a hung reply
            # One connection for both checks: each connection costs a BEGIN and a ROLLBACK of its own.
            async with pinged(bot.engine) as (connection, database_ms):
                state = await schema_state_on(connection)
            schema_current, revision = state.is_current, state.current
    except Exception as failure:  # any database failure is what this check exists to show
        error = f"{type(failure).__name__}: {failure}".splitlines()[0][:200]
        log.warning("health check: the database did not answer", exc_info=True)
    shard_latencies = {
        shard_id: ms for shard_id, seconds in bot.latencies if (ms := _milliseconds(seconds)) is not None
    }
    return HealthReport(
        database_ok=error is None,
        database_ms=database_ms,
        database_error=error,
        schema_current=schema_current,
        schema_revision=revision,
        latency_ms=_milliseconds(bot.latency),
        extensions=sorted(bot.extensions),
        failed_extensions=dict(bot.failed_extensions),
        uptime_seconds=bot.uptime_seconds,
        version=__version__,
        commit=git_commit(),
        memory_bytes=psutil.Process().memory_info().rss,
        shard_latencies_ms=shard_latencies,
    )
