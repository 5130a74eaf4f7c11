"""The bot's health, checked the same way for ``/health``, ``/readyz``, ``/status`` and ``botops health``.

Each check is real: the database answers a query and reports its schema revision and size, the latency
is the gateway's heartbeat round trip, a shard counts as connected from its READY or RESUMED until its
connection closes, memory is the process's resident set. :attr:`HealthReport.problems` names every
readiness check that fails; an empty dict means ready.
"""

from __future__ import annotations

import asyncio
import logging
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import psutil

from botops import __version__
from botops.db.engine import database_size, pinged
from botops.db.migrate import schema_state_on
from botops.redaction import Redactor
from botops.version import git_commit

if TYPE_CHECKING:
    import datetime

    from botops.backup.schedule import NewestBackup
    from botops.bot.core import Bot

__all__ = ["LATENCY_THRESHOLD_MS", "HealthReport", "ShardHealth", "collect_health"]

log = logging.getLogger(__name__)

#: The handbook's line between a healthy and a slow gateway.
LATENCY_THRESHOLD_MS = 200.0
#: Seconds the database may take to answer before the check reports it as failed.
DATABASE_TIMEOUT = 2.0


@dataclass(frozen=True)
class ShardHealth:
    """One shard's gateway connection."""

    connected: bool
    latency_ms: float | None
    identifies: int
    resumes: int
    disconnects: int
    reconnects: int


@dataclass(frozen=True)
class HealthReport:
    """What ``/health`` and ``/status`` show, and what ``/readyz`` decides on."""

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
    #: Every shard the process runs, by id; empty until the bot knows its shard count.
    shards: dict[int, ShardHealth] = field(default_factory=dict)
    database_size_bytes: int | None = None
    guilds: int = 0
    errors_last_hour: int = 0
    #: Extensions start-up loaded that are not loaded now (unloaded, or lost in a failed reload).
    missing_extensions: list[str] = field(default_factory=list)
    closing: bool = False
    #: The newest backup in BACKUP_DIR (whoever made it) and the bot's next scheduled one, when known.
    newest_backup: NewestBackup | None = None
    next_backup_at: datetime.datetime | None = None

    @property
    def latency_ok(self) -> bool:
        return self.latency_ms is not None and self.latency_ms < LATENCY_THRESHOLD_MS

    @property
    def healthy(self) -> bool:
        return self.database_ok and self.schema_current and self.latency_ok and not self.failed_extensions

    @property
    def problems(self) -> dict[str, str]:
        """Return every failing readiness check, by name (database, schema, gateway, extensions)."""
        problems: dict[str, str] = {}
        if not self.database_ok:
            problems["database"] = f"the database did not answer: {self.database_error}"
        elif not self.schema_current:
            problems["schema"] = (
                f"the schema is at {self.schema_revision or 'no revision'}, behind the code: "
                "run `botops db upgrade`"
            )
        if not self.shards:
            problems["gateway"] = "not connected to the gateway yet"
        else:
            down = [str(shard_id) for shard_id, shard in sorted(self.shards.items()) if not shard.connected]
            if down:
                problems["gateway"] = f"shard {', '.join(down)} not connected"
        unloaded = sorted({*self.failed_extensions, *self.missing_extensions})
        if unloaded:
            problems["extensions"] = "not loaded: " + ", ".join(unloaded)
        if self.closing:
            problems["shutdown"] = "the bot is shutting down"
        return problems

    @property
    def ready(self) -> bool:
        """Whether every shard is connected, the database answers and is current, and extensions loaded."""
        return not self.problems


def _milliseconds(seconds: float) -> float | None:
    return None if math.isnan(seconds) or math.isinf(seconds) else round(seconds * 1000, 1)


async def collect_health(bot: Bot) -> HealthReport:
    """Run every check once and return the report; a failing check is reported, never raised."""
    database_ms: float | None = None
    size: int | None = None
    error: str | None = None
    schema_current = False
    revision: str | None = None
    try:
        async with asyncio.timeout(DATABASE_TIMEOUT):  # a hung database is a failed check, not a hung reply
            # One connection for both checks: each connection costs a BEGIN and a ROLLBACK of its own.
            async with pinged(bot.engine) as (connection, database_ms):
                state = await schema_state_on(connection)
                size = await database_size(connection)
            schema_current, revision = state.is_current, state.current
            bot.metrics.database_size.set(size)
    except Exception as failure:  # any database failure is what this check exists to show
        error = Redactor(bot.settings.secret_values())(
            f"{type(failure).__name__}: {failure}".splitlines()[0][:200]
        )
        log.warning("health check: the database did not answer", exc_info=True)
        bot.metrics.database_size.set(float("nan"))  # unknown, rather than the last size seen
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
        shards=_shards(bot),
        database_size_bytes=size,
        guilds=len(bot.guilds),
        errors_last_hour=bot.metrics.errors_in_window(),
        missing_extensions=[name for name in bot.required_extensions if name not in bot.extensions],
        closing=bot.closing,
        newest_backup=bot.backups.newest if bot.backups else None,
        next_backup_at=bot.backups.next_run if bot.backups else None,
    )


def _shards(bot: Bot) -> dict[int, ShardHealth]:
    """Return the health of every shard this process runs; empty while the shard count is unknown."""
    if bot.shard_ids:
        expected = list(bot.shard_ids)
    elif bot.shard_count:
        expected = list(range(bot.shard_count))
    else:
        return {}
    states = bot.metrics.gateway.shards
    latencies = dict(bot.latencies)
    shards = {}
    for shard_id in expected:
        state = states.get(shard_id)
        if state is None:
            shards[shard_id] = ShardHealth(False, None, 0, 0, 0, 0)
            continue
        latency = _milliseconds(latencies[shard_id]) if state.connected and shard_id in latencies else None
        shards[shard_id] = ShardHealth(
            state.connected, latency, state.identifies, state.resumes, state.disconnects, state.reconnects
        )
    return shards
