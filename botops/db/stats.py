"""Queries of the command statistics: write the hourly sums of command uses, read the top and the errors.

Every finished command reaches the database only through :func:`write_command_usage`, the ``write``
function of the stats cog's :class:`~botops.db.writer.BatchedWriter`: a flush adds each key's uses and
seconds to its row of ``command_usage`` (one ``INSERT ... ON CONFLICT DO UPDATE`` executed for many
rows, on SQLite and PostgreSQL alike), in key order, so two shard processes never deadlock.

Time is kept in whole hours since 1970 UTC (:func:`hour_of`), so a window starts at the beginning of an
hour: "the last 24 hours" are the current hour and the 23 before it (:func:`window_start`). A use is
any invocation, whatever its outcome: a refused or failed command was still asked for, so it counts in
the top lists; errors are shown apart, per hour. ``guild_id`` 0 is a direct message; ``guild_id=None``
in a query means every guild and the direct messages together.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from sqlalchemy import case, func, select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.sql import ColumnElement

from botops.db.engine import connect
from botops.db.schema import command_usage

__all__ = [
    "DIRECT_MESSAGES",
    "ERROR_HOURS",
    "TOP_LIMIT",
    "UsageDelta",
    "UsageKey",
    "UsageSummary",
    "UsageTotals",
    "UsageWindow",
    "errors_per_hour",
    "hour_of",
    "merge_usage",
    "sparkline",
    "start_of_hour",
    "top_commands",
    "usage_summary",
    "usage_totals",
    "window_start",
    "write_command_usage",
]

log = logging.getLogger(__name__)

#: The ``guild_id`` of a command used in a direct message (a primary key column cannot hold NULL).
DIRECT_MESSAGES: Final = 0
#: Hours the errors-per-hour line of /stats and ``botops stats`` covers.
ERROR_HOURS: Final = 24
#: Commands each top list shows.
TOP_LIMIT: Final = 10
#: The longest command name stored; Discord's qualified names (three parts of 32) fit.
COMMAND_NAME_LENGTH: Final = 100

_SECONDS_PER_HOUR: Final = 3600
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)

#: ``(hour, guild_id, command, kind, outcome)``: the primary key of a ``command_usage`` row.
UsageKey = tuple[int, int, str, str, str]


# -- hours -----------------------------------------------------------------------------------------------


def hour_of(moment: datetime | float) -> int:
    """Return the hour ``moment`` falls in, as hours since 1970 UTC; a naive datetime is taken as UTC.

    A float is Unix time (:attr:`~botops.observability.metrics.CommandUse.at`).
    """
    if isinstance(moment, datetime):
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        moment = (moment - _EPOCH).total_seconds()
    return int(moment // _SECONDS_PER_HOUR)


def start_of_hour(hour: int) -> datetime:
    """Return the UTC time at which ``hour`` (hours since 1970) begins."""
    return _EPOCH + timedelta(hours=hour)


def window_start(now: datetime, hours: int) -> datetime:
    """Return the start of a window of ``hours`` whole hours that ends with the hour ``now`` falls in.

    Raises:
        ValueError: ``hours`` is not positive.
    """
    if hours <= 0:
        raise ValueError(f"a window needs at least one hour, got {hours}")
    return start_of_hour(hour_of(now) - hours + 1)


# -- writing ---------------------------------------------------------------------------------------------


@dataclass(slots=True)
class UsageDelta:
    """What one or more uses of a command add to its hour's row. Mutable: merged in place, like XP."""

    uses: int
    seconds: float


def merge_usage(older: UsageDelta, newer: UsageDelta) -> UsageDelta:
    """Add ``newer`` into ``older`` and return it (the ``merge`` of the stats writer)."""
    older.uses += newer.uses
    older.seconds += newer.seconds
    return older


async def write_command_usage(connection: AsyncConnection, batch: dict[UsageKey, UsageDelta]) -> None:
    """Add each key's uses and seconds to its row (creating missing rows) in the open transaction.

    A command name longer than the column is cut to fit; keys that then coincide are summed first,
    since one statement may not upsert the same row twice.

    Raises:
        sqlalchemy.exc.DBAPIError: the database refused the statement; nothing of it is applied once the
            caller rolls back.
    """
    if not batch:
        return
    insert: Any = postgresql_insert if connection.dialect.name == "postgresql" else sqlite_insert
    statement = insert(command_usage)
    excluded = statement.excluded
    statement = statement.on_conflict_do_update(
        index_elements=list(command_usage.primary_key.columns),
        set_={
            "uses": command_usage.c.uses + excluded.uses,
            "total_seconds": command_usage.c.total_seconds + excluded.total_seconds,
        },
    )
    # Summed afresh rather than merged into the batch's deltas: a failed batch goes back to the writer.
    sums: dict[UsageKey, tuple[int, float]] = {}
    for (hour, guild_id, command, kind, outcome), delta in batch.items():
        key = (hour, guild_id, command[:COMMAND_NAME_LENGTH], kind, outcome)
        uses, seconds = sums.get(key, (0, 0.0))
        sums[key] = (uses + delta.uses, seconds + delta.seconds)
    rows = [
        {
            "hour": hour,
            "guild_id": guild_id,
            "command": command,
            "kind": kind,
            "outcome": outcome,
            "uses": uses,
            "total_seconds": seconds,
        }
        # In key order: two processes upserting overlapping rows lock them in the same order.
        for (hour, guild_id, command, kind, outcome), (uses, seconds) in sorted(sums.items())
    ]
    await connection.execute(statement, rows)


# -- reading ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class UsageTotals:
    """All uses in a window, the refused and failed among them, and their summed duration."""

    uses: int = 0
    refused: int = 0
    errors: int = 0
    total_seconds: float = 0.0

    @property
    def average_seconds(self) -> float | None:
        """The mean duration of a use, ``None`` without uses."""
        return self.total_seconds / self.uses if self.uses else None


@dataclass(frozen=True)
class UsageWindow:
    """One window of the statistics: ``day``, ``week`` or ``all`` (``since`` is then ``None``)."""

    name: str
    since: datetime | None
    top: list[tuple[str, int]]
    totals: UsageTotals


@dataclass(frozen=True)
class UsageSummary:
    """What /stats and ``botops stats`` show: the top commands of three windows and the hourly errors."""

    guild_id: int | None
    windows: tuple[UsageWindow, ...]
    #: Errors in each of the last :data:`ERROR_HOURS` hours, oldest first, from ``errors_since`` on.
    errors_per_hour: list[int]
    errors_since: datetime


def _in(guild_id: int | None, since: datetime | None) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    if guild_id is not None:
        conditions.append(command_usage.c.guild_id == guild_id)
    if since is not None:
        conditions.append(command_usage.c.hour >= hour_of(since))
    return conditions


async def _top_commands(
    connection: AsyncConnection, since: datetime | None, guild_id: int | None, limit: int
) -> list[tuple[str, int]]:
    uses = func.sum(command_usage.c.uses).label("uses")
    query = (
        select(command_usage.c.command, uses)
        .where(*_in(guild_id, since))
        .group_by(command_usage.c.command)
        .order_by(uses.desc(), command_usage.c.command.asc())
        .limit(limit)
    )
    rows: Sequence[Any] = (await connection.execute(query)).all()
    return [(str(command), int(count)) for command, count in rows]


async def top_commands(
    engine: AsyncEngine, *, since: datetime | None, guild_id: int | None, limit: int = TOP_LIMIT
) -> list[tuple[str, int]]:
    """Return ``(command, uses)`` of the most used commands from the hour of ``since`` on, most first.

    ``since=None`` is all time, ``guild_id=None`` every guild and direct message; every outcome counts
    as a use, and a slash and a text command of one name count together. Ties go by name.

    Raises:
        ValueError: ``limit`` is not positive.
        DatabaseUnavailable: the database cannot be reached.
    """
    if limit <= 0:
        raise ValueError(f"limit must be > 0, got {limit}")
    async with connect(engine) as connection:
        return await _top_commands(connection, since, guild_id, limit)


async def _usage_totals(
    connection: AsyncConnection, since: datetime | None, guild_id: int | None
) -> UsageTotals:
    def of(outcome: str) -> ColumnElement[Any]:
        # CASE rather than FILTER, which SQLite only has since 3.30.
        return func.coalesce(func.sum(case((command_usage.c.outcome == outcome, command_usage.c.uses))), 0)

    query = select(
        func.coalesce(func.sum(command_usage.c.uses), 0),
        of("refused"),
        of("error"),
        func.coalesce(func.sum(command_usage.c.total_seconds), 0.0),
    ).where(*_in(guild_id, since))
    uses, refused, errors, seconds = (await connection.execute(query)).one()
    return UsageTotals(int(uses), int(refused), int(errors), float(seconds))


async def usage_totals(engine: AsyncEngine, *, since: datetime | None, guild_id: int | None) -> UsageTotals:
    """Return the uses (all outcomes), refusals, errors and summed seconds from the hour of ``since`` on.

    Raises:
        DatabaseUnavailable: the database cannot be reached.
    """
    async with connect(engine) as connection:
        return await _usage_totals(connection, since, guild_id)


async def _errors_per_hour(
    connection: AsyncConnection, since: datetime, guild_id: int | None, hours: int
) -> list[int]:
    first = hour_of(since)
    query = (
        select(command_usage.c.hour, func.sum(command_usage.c.uses))
        .where(
            command_usage.c.outcome == "error",
            command_usage.c.hour >= first,
            command_usage.c.hour < first + hours,
            *_in(guild_id, None),
        )
        .group_by(command_usage.c.hour)
    )
    counts = [0] * hours
    for hour, errors in (await connection.execute(query)).all():
        counts[int(hour) - first] = int(errors)
    return counts


async def errors_per_hour(
    engine: AsyncEngine, *, since: datetime, guild_id: int | None, hours: int = ERROR_HOURS
) -> list[int]:
    """Return the failed uses of each of ``hours`` hours from the hour of ``since``, oldest first.

    An hour without errors is 0, so the list always has ``hours`` items.

    Raises:
        ValueError: ``hours`` is not positive.
        DatabaseUnavailable: the database cannot be reached.
    """
    if hours <= 0:
        raise ValueError(f"hours must be > 0, got {hours}")
    async with connect(engine) as connection:
        return await _errors_per_hour(connection, since, guild_id, hours)


_BARS: Final = "▁▂▃▄▅▆▇█"


def sparkline(counts: Sequence[int]) -> str:
    """Return one bar per count, scaled to the largest; 0 is the lowest bar, any other count is higher."""
    highest = max(counts, default=0)
    if highest <= 0:
        return _BARS[0] * len(counts)
    top = len(_BARS) - 1
    # 1 + the count's share of the 6 upper steps, so that a single error next to many still shows.
    return "".join(
        _BARS[0] if count <= 0 else _BARS[1 + round((top - 1) * count / highest)] for count in counts
    )


#: The windows of a summary: name and hours back (``None``: all time).
_WINDOWS: Final[tuple[tuple[str, int | None], ...]] = (("day", 24), ("week", 7 * 24), ("all", None))


async def usage_summary(
    engine: AsyncEngine, *, now: datetime, guild_id: int | None, limit: int = TOP_LIMIT
) -> UsageSummary:
    """Return the top commands and totals of the last 24 hours, 7 days and all time, and the hourly errors.

    One connection serves every query; the windows end with the hour ``now`` falls in.

    Raises:
        DatabaseUnavailable: the database cannot be reached.
    """
    windows: list[UsageWindow] = []
    errors_since = window_start(now, ERROR_HOURS)
    async with connect(engine) as connection:
        for name, hours in _WINDOWS:
            since = None if hours is None else window_start(now, hours)
            top = await _top_commands(connection, since, guild_id, limit)
            totals = await _usage_totals(connection, since, guild_id)
            windows.append(UsageWindow(name, since, top, totals))
        errors = await _errors_per_hour(connection, errors_since, guild_id, ERROR_HOURS)
    return UsageSummary(guild_id, tuple(windows), errors, errors_since)
