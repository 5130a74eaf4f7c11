"""Queries of the levels feature: write batched XP awards, read a member's XP, rank and the leaderboard.

Awards reach the database only through :func:`write_xp_deltas`, the ``write`` function of the levels
cog's :class:`~botops.db.writer.BatchedWriter`: a flush upserts every member's summed delta in one
transaction. SQLite gets an ``executemany`` of ``INSERT ... ON CONFLICT DO UPDATE`` per chunk of rows;
PostgreSQL gets one statement that upserts ``SELECT * FROM unnest(...)`` of five arrays, a single round
trip whatever the batch size, in key order. Both prepare their parameters on the event loop a chunk at
a time and yield in between, so a flush of thousands of rows never holds the loop for long
(bench/levels.py part (d) measures it; bench/README.md has the figures and the variants tried).

:func:`rank_by_count` is the plain indexed ``COUNT(*)``: the reference that the in-memory ranks of
:mod:`botops.levels.ranks` are checked against, not the path /rank takes.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from sqlalchemy import (
    BigInteger,
    DateTime,
    Integer,
    String,
    bindparam,
    cast,
    func,
    literal_column,
    select,
    type_coerce,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.sql import ColumnElement
from sqlalchemy.sql.dml import Insert

from botops.db.schema import member_xp

__all__ = [
    "CHUNK_ROWS",
    "XpDelta",
    "load_guild_xp",
    "member_xp_of",
    "merge_xp_deltas",
    "rank_by_count",
    "top_members",
    "write_xp_deltas",
]

log = logging.getLogger(__name__)

#: Rows whose parameters are prepared on the event loop between two yields to it: a few tenths of a
#: millisecond. On SQLite each chunk is one ``executemany``, which runs in aiosqlite's thread.
CHUNK_ROWS: Final = 500
#: Rows of :func:`load_guild_xp` fetched per round trip, so loading a large guild lets other tasks run.
LOAD_PARTITION_ROWS: Final = 10_000

_COLUMNS: Final = ("guild_id", "user_id", "xp", "messages", "last_awarded_at")


@dataclass(slots=True)
class XpDelta:
    """What one or more awards add to a member's row: XP, messages counted, and the latest award time.

    Mutable on purpose: the levels writer merges a member's awards into the first one in place
    (:meth:`merge`), so an award costs one object, not two; build a fresh delta for each award.
    """

    xp: int
    messages: int
    #: None for a change that is no award (an administrator's /xp): it leaves the stored time as it was.
    last_awarded_at: datetime | None

    def merge(self, newer: XpDelta) -> XpDelta:
        """Add ``newer`` into this delta (XP and messages summed, the later award time) and return it."""
        self.xp += newer.xp
        self.messages += newer.messages
        later = newer.last_awarded_at
        if later is not None and (self.last_awarded_at is None or later > self.last_awarded_at):
            self.last_awarded_at = later
        return self


def merge_xp_deltas(older: XpDelta, newer: XpDelta) -> XpDelta:
    """Add ``newer`` into ``older`` and return it (the ``merge`` of the levels writer)."""
    return older.merge(newer)


# -- writing ---------------------------------------------------------------------------------------------


async def write_xp_deltas(connection: AsyncConnection, deltas: dict[tuple[int, int], XpDelta]) -> None:
    """Add each member's delta to its row (creating missing rows) inside the connection's open transaction.

    Raises:
        sqlalchemy.exc.DBAPIError: the database refused the statement; nothing of it is applied once the
            caller rolls back.
    """
    if not deltas:
        return
    if connection.dialect.name == "postgresql":
        await _write_with_unnest(connection, deltas)
    else:
        await _write_with_executemany(connection, deltas)


async def _write_with_executemany(
    connection: AsyncConnection, deltas: dict[tuple[int, int], XpDelta]
) -> None:
    sql = _compiled_upsert(connection.dialect)
    # The statement is compiled once; rows go to the driver as plain tuples, skipping SQLAlchemy's
    # per-row parameter processing (a flush is thousands of rows). The award time travels as integer
    # microseconds and SQLite formats it: a quarter of the cost of formatting it here, on the loop.
    items = list(deltas.items())
    for start in range(0, len(items), CHUNK_ROWS):
        rows = [
            (guild_id, user_id, delta.xp, delta.messages, micros, micros)
            for (guild_id, user_id), delta in items[start : start + CHUNK_ROWS]
            for micros in (_epoch_micros(delta.last_awarded_at),)
        ]
        await connection.exec_driver_sql(sql, rows)


async def _write_with_unnest(connection: AsyncConnection, deltas: dict[tuple[int, int], XpDelta]) -> None:
    # Each array goes as the text of a PostgreSQL array literal ("{1,2,NULL}") that the server parses.
    # asyncpg's binary encoding of arrays runs on the event loop in one block (15 ms for 5,000 rows);
    # joining numbers into text costs less than half of that and runs in chunks that yield between.
    columns: tuple[list[str], ...] = ([], [], [], [], [])
    guild_ids, user_ids, xps, messages, micros = columns
    items = list(deltas.items())
    for start in range(0, len(items), CHUNK_ROWS):
        if start:
            await asyncio.sleep(0)
        chunk = items[start : start + CHUNK_ROWS]
        guild_ids.append(",".join([str(guild_id) for (guild_id, _), _ in chunk]))
        user_ids.append(",".join([str(user_id) for (_, user_id), _ in chunk]))
        xps.append(",".join([str(delta.xp) for _, delta in chunk]))
        messages.append(",".join([str(delta.messages) for _, delta in chunk]))
        micros.append(",".join([_micros_text(delta.last_awarded_at) for _, delta in chunk]))
    names = ("guild_ids", "user_ids", "xps", "messages", "micros")
    await connection.execute(
        _UNNEST_UPSERT, {name: f"{{{','.join(parts)}}}" for name, parts in zip(names, columns, strict=True)}
    )


def _micros_text(moment: datetime | None) -> str:
    micros = _epoch_micros(moment)
    return "NULL" if micros is None else str(micros)


def _epoch_micros(moment: datetime | None) -> int | None:
    # None (no award) stays NULL, which the upsert's coalesce leaves as it was; a naive time is UTC.
    if moment is None:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return (moment - _EPOCH) // _MICROSECOND


_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND: Final = timedelta(microseconds=1)


def _sqlite_time_of(micros: ColumnElement[int]) -> ColumnElement[str]:
    """SQLite's text for UTC microseconds since 1970, exactly as SQLAlchemy writes a DateTime there.

    SQLite has no time zone type; SQLAlchemy stores ``2025-06-01 12:00:00.000000`` (UTC here), text
    that sorts as the times compare. Times before 1970 would format wrongly; awards are never that old.
    """
    million: ColumnElement[int] = literal_column("1000000", BigInteger)
    seconds = func.strftime(
        literal_column("'%Y-%m-%d %H:%M:%S'"), micros // million, literal_column("'unixepoch'")
    )
    return seconds.concat(func.printf(literal_column("'.%06d'"), micros % million))


def _sqlite_upsert() -> Insert:
    values: dict[str, Any] = {name: bindparam(name) for name in _COLUMNS[:-1]}
    values["last_awarded_at"] = _sqlite_time_of(bindparam("micros", type_=BigInteger))
    statement = sqlite_insert(member_xp).values(values)
    excluded = statement.excluded
    return statement.on_conflict_do_update(
        index_elements=[member_xp.c.guild_id, member_xp.c.user_id],
        set_={
            "xp": member_xp.c.xp + excluded.xp,
            "messages": member_xp.c.messages + excluded.messages,
            # SQLite's two-argument max() is NULL when either is; a member's first award has no time yet.
            "last_awarded_at": func.coalesce(
                func.max(member_xp.c.last_awarded_at, excluded.last_awarded_at),
                excluded.last_awarded_at,
                member_xp.c.last_awarded_at,
            ),
        },
    )


_SQLITE_PARAMETERS: Final = ("guild_id", "user_id", "xp", "messages", "micros", "micros")
_compiled: dict[str, str] = {}


def _compiled_upsert(dialect: Dialect) -> str:
    sql = _compiled.get(dialect.name)
    if sql is None:
        compiled = _sqlite_upsert().compile(dialect=dialect)
        # _write_with_executemany builds its tuples in this order; make sure the placeholders are too.
        if tuple(compiled.positiontup or ()) != _SQLITE_PARAMETERS:
            raise RuntimeError(
                f"unexpected parameter order {compiled.positiontup!r}, not {_SQLITE_PARAMETERS!r}"
            )
        sql = _compiled[dialect.name] = compiled.string
    return sql


def _unnest_upsert() -> Insert:
    def array(name: str, item: type[BigInteger | Integer]) -> ColumnElement[Any]:
        return cast(bindparam(name, type_=String), ARRAY(item))

    arrays = (
        func.unnest(
            array("guild_ids", BigInteger),
            array("user_ids", BigInteger),
            array("xps", BigInteger),
            array("messages", Integer),
            array("micros", BigInteger),
        )
        .table_valued(*_COLUMNS[:-1], "micros")
        .render_derived()
    )
    # Microseconds since 1970 to timestamptz, exactly (a float8 holds them exactly until the year 2255).
    awarded_at = type_coerce(
        literal_column("TIMESTAMPTZ 'epoch'") + arrays.c.micros * literal_column("INTERVAL '1 microsecond'"),
        DateTime(timezone=True),
    )
    # In key order, like SQLite's: two shard processes upserting overlapping rows lock them in the same
    # order, so they queue instead of deadlocking.
    rows = select(arrays.c.guild_id, arrays.c.user_id, arrays.c.xp, arrays.c.messages, awarded_at).order_by(
        arrays.c.guild_id, arrays.c.user_id
    )
    statement = postgresql_insert(member_xp).from_select(list(_COLUMNS), rows)
    excluded = statement.excluded
    return statement.on_conflict_do_update(
        index_elements=[member_xp.c.guild_id, member_xp.c.user_id],
        set_={
            "xp": member_xp.c.xp + excluded.xp,
            "messages": member_xp.c.messages + excluded.messages,
            # greatest() skips NULLs: a member's first award time wins over none, and an
            # administrator's change (no time) keeps the stored one.
            "last_awarded_at": func.greatest(member_xp.c.last_awarded_at, excluded.last_awarded_at),
        },
    )


_UNNEST_UPSERT: Final = _unnest_upsert()


# -- single rows -----------------------------------------------------------------------------------------


def _dialect_insert(dialect: Dialect) -> Any:
    # Both dialects' Insert have on_conflict_do_update and excluded, with the same signature.
    return postgresql_insert(member_xp) if dialect.name == "postgresql" else sqlite_insert(member_xp)


async def member_xp_of(engine: AsyncEngine, guild_id: int, user_id: int) -> int:
    """Return a member's XP in a guild, 0 for a member without a row."""
    query = select(member_xp.c.xp).where(_member(guild_id, user_id))
    async with engine.connect() as connection:
        xp = (await connection.execute(query)).scalar_one_or_none()
    return 0 if xp is None else int(xp)


def _member(guild_id: int, user_id: int) -> ColumnElement[bool]:
    return (member_xp.c.guild_id == guild_id) & (member_xp.c.user_id == user_id)


# -- a guild's order -------------------------------------------------------------------------------------


async def load_guild_xp(engine: AsyncEngine, guild_id: int) -> list[tuple[int, int]]:
    """Return ``(user_id, xp)`` of every member of a guild with a row, in no particular order."""
    query = select(member_xp.c.user_id, member_xp.c.xp).where(member_xp.c.guild_id == guild_id)
    rows: list[tuple[int, int]] = []
    async with engine.connect() as connection:
        # Streamed in partitions: a guild of a million members must not hold the event loop for the
        # whole result at once.
        result = await connection.stream(query.execution_options(yield_per=LOAD_PARTITION_ROWS))
        async for partition in result.partitions():
            rows.extend((user_id, xp) for user_id, xp in partition)
    return rows


async def rank_by_count(engine: AsyncEngine, guild_id: int, xp: int) -> int:
    """Return the rank ``xp`` has in a guild: 1 + the members with strictly more XP (ties share a rank)."""
    query = (
        select(func.count())
        .select_from(member_xp)
        .where(member_xp.c.guild_id == guild_id, member_xp.c.xp > xp)
    )
    async with engine.connect() as connection:
        above = (await connection.execute(query)).scalar_one()
    return 1 + int(above)


async def top_members(engine: AsyncEngine, guild_id: int, offset: int, limit: int) -> list[tuple[int, int]]:
    """Return ``(user_id, xp)`` of a guild's members from ``offset``, most XP first, ties by user id.

    Raises:
        ValueError: ``offset`` is negative or ``limit`` is not positive.
    """
    if offset < 0 or limit <= 0:
        raise ValueError(f"offset must be >= 0 and limit > 0, got offset={offset}, limit={limit}")
    query = (
        select(member_xp.c.user_id, member_xp.c.xp)
        .where(member_xp.c.guild_id == guild_id)
        .order_by(member_xp.c.xp.desc(), member_xp.c.user_id.asc())
        .offset(offset)
        .limit(limit)
    )
    async with engine.connect() as connection:
        rows: Sequence[Any] = (await connection.execute(query)).all()
    return [(int(user_id), int(xp)) for user_id, xp in rows]
