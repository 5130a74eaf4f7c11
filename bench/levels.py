"""Benchmark the levels feature: award throughput (a), messages through the whole bot (c), loop lag (d).

Run ``.venv/bin/python bench/levels.py`` (``--quick`` for small sizes, ``--parts a`` for one part).
PostgreSQL runs too where ``BOTOPS_TEST_POSTGRES_URL`` (or ``--postgres-url``) names a server: the
bench creates a scratch database on it and drops it afterwards. SQLite files live in a temporary folder.

(a) Awards per second: the same message events (seeded; ``events`` over ``members`` of one guild,
    awards 15-25) awarded by
    * naive: one ``UPDATE member_xp SET xp = xp + ? WHERE user_id = ? AND guild_id = ?`` and one commit
      per message, the handbook's "BAD: Loop Updates" (stdlib sqlite3 with WAL; asyncpg on PostgreSQL),
    * handbook batch: every event's UPDATE in one ``executemany`` and one commit, the handbook's "GOOD",
    * peer: ``discordLevelingSystem`` 1.2.1 from PyPI, its ``DiscordLevelingSystem.award_xp`` driven
      with stand-in message objects (no Discord connection), on its own database file and settings,
    * botops: ``BatchedWriter`` with ``write_xp_deltas``, default interval and ``max_pending``, one
      ``writer.add`` per event and a final ``stop()``; the time runs until the last row is committed.
    Every contender starts from the same guild of ``members`` members (all rows present, XP 0) and
    its totals are checked against the sum of the awards it was given. The slow contenders award the
    first ``naive_events`` / ``peer_events`` events only; their rate is events ÷ seconds as for the rest.
(d) Event-loop lag: a member_xp table of ``lag_rows`` members of one guild; ``lag_flushes`` flushes of
    ``flush_rows`` random members' deltas each through the writer, while a task sleeps 1 ms again and
    again and records how late it wakes (only while a flush runs); next to the same upsert made with
    stdlib sqlite3 called on the event loop (same rows, same pragmas), and next to the idle loop, the
    floor of this machine. p99 and worst, on SQLite and, where configured, PostgreSQL.
(c) Messages per second through the whole bot: ``python -m botops run`` (every message an award: the
    guild's cooldown is 0) next to a bare discord.py bot with an empty ``on_message``, both as child
    processes on one sandbox; see bench/levels_bot.py, which runs it (and runs alone too).

(b) /rank and /leaderboard latency on a guild of a million members: the indexed COUNT(*), the peer and
    GuildRanks; bench/levels_ranks.py runs it and prints its own table (and runs alone too).

Before each measurement the garbage collector is settled (``settle_garbage_collector``); each part is one
function in ``PARTS``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import os
import platform
import random
import secrets
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import asyncpg
from levels_ranks import PEER_DDL  # bench/levels_ranks.py, beside this file
from measure import percentile  # bench/measure.py, beside this file
from sqlalchemy import func, select
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from botops.db import migrate
from botops.db.engine import create_engine_for_url
from botops.db.levels import XpDelta, write_xp_deltas
from botops.db.schema import member_xp
from botops.db.writer import BatchedWriter

GUILD = 900_000_000_000_000_001
USER_BASE = 800_000_000_000_000_000
T0 = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
#: The feeding loop yields to the event loop after this many events, as a bot does between messages.
FEED_CHUNK = 1000
#: botops' runs take a fraction of a second each, so noise from other processes weighs more: median of 3.
BOTOPS_RUNS = 3
GOALS = {"sqlite_vs_naive": 200.0, "sqlite_vs_peer": 1000.0, "postgresql_awards": 100_000.0}
LAG_GOAL_P99_MS = 1.0
LAG_GOAL_WORST_MS = 10.0
NAIVE_UPDATE = "UPDATE member_xp SET xp = xp + ? WHERE user_id = ? AND guild_id = ?"
NAIVE_UPDATE_PG = "UPDATE member_xp SET xp = xp + $1 WHERE user_id = $2 AND guild_id = $3"
#: The upsert a bot calling stdlib sqlite3 would run for a flush (part d): same rows, same effect as botops'.
STDLIB_UPSERT = (
    "INSERT INTO member_xp (guild_id, user_id, xp, messages, last_awarded_at) VALUES (?, ?, ?, ?, ?) "
    "ON CONFLICT (guild_id, user_id) DO UPDATE SET xp = member_xp.xp + excluded.xp, "
    "messages = member_xp.messages + excluded.messages, "
    "last_awarded_at = max(member_xp.last_awarded_at, excluded.last_awarded_at)"
)


@dataclass(frozen=True)
class Sizes:
    """How much each part does; ``--quick`` uses the small set."""

    events: int
    members: int
    naive_events: int
    peer_events: int
    lag_rows: int
    flush_rows: int
    lag_flushes: int


FULL = Sizes(
    events=200_000,
    members=5_000,
    naive_events=50_000,
    peer_events=1_000,
    lag_rows=1_000_000,
    flush_rows=5_000,
    lag_flushes=10,
)
QUICK = Sizes(
    events=20_000,
    members=5_000,
    naive_events=2_000,
    peer_events=200,
    lag_rows=100_000,
    flush_rows=5_000,
    lag_flushes=3,
)


@dataclass
class Row:
    """One line of the result table."""

    part: str
    backend: str
    contender: str
    count: int
    seconds: float
    figure: str
    note: str = ""


@dataclass
class Bench:
    """Where a part runs: sizes, a scratch folder, the PostgreSQL server (or None), and the results."""

    sizes: Sizes
    folder: Path
    postgres_url: str | None
    seed: int
    rows: list[Row]
    verdicts: list[tuple[str, str, bool]]


# -- the events --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Events:
    """``n`` message events: who (user id), how much XP, and when."""

    users: list[int]
    amounts: list[int]
    times: list[datetime]

    def __len__(self) -> int:
        return len(self.users)

    def total(self, count: int | None = None) -> int:
        return sum(self.amounts[:count])


def make_events(n: int, members: int, seed: int) -> Events:
    """Return ``n`` events over ``members`` members, awards 15-25, one millisecond apart."""
    rng = random.Random(seed)
    users = [USER_BASE + rng.randrange(members) for _ in range(n)]
    amounts = [rng.randint(15, 25) for _ in range(n)]
    times = [T0 + timedelta(milliseconds=i) for i in range(n)]
    return Events(users, amounts, times)


# -- databases -----------------------------------------------------------------------------------------


def settle_garbage_collector() -> None:
    """Collect, then freeze what the setup left alive (events, imported modules) out of the collector's way.

    Without it, a full collection over the bench's own data (200,000 events, the seeding's leftovers)
    lands in the middle of a measurement and costs 40-60 ms on this machine: a pause of the bench
    process, not of the code measured. Collections of what the measured code allocates still count.
    """
    gc.collect()
    gc.freeze()


def sqlite_url(path: Path) -> str:
    return f"sqlite+aiosqlite:///{path}"


@contextlib.asynccontextmanager
async def scratch_postgres(server_url: str) -> AsyncIterator[str]:
    """Create a database on the server, yield its ``postgresql+asyncpg://`` URL, drop it afterwards."""
    server = make_url(server_url).set(drivername="postgresql")
    name = f"botops_bench_{secrets.token_hex(6)}"
    admin = await asyncpg.connect(server.render_as_string(hide_password=False))
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        try:
            yield server.set(drivername="postgresql+asyncpg", database=name).render_as_string(
                hide_password=False
            )
        finally:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


def asyncpg_dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


@contextlib.asynccontextmanager
async def migrated_engine(url: str) -> AsyncIterator[AsyncEngine]:
    """An engine on ``url`` with the schema at head, disposed afterwards."""
    engine = create_engine_for_url(url)
    try:
        await migrate.upgrade(engine)
        yield engine
    finally:
        await engine.dispose()


async def seed_members(engine: AsyncEngine, users: range | list[int]) -> None:
    """Give each member of ``users`` a row in the bench guild with 0 XP."""
    users = list(users)
    for start in range(0, len(users), 50_000):
        async with engine.begin() as connection:
            await write_xp_deltas(
                connection, {(GUILD, user): XpDelta(0, 0, T0) for user in users[start : start + 50_000]}
            )


async def guild_total(engine: AsyncEngine) -> int:
    query = select(func.coalesce(func.sum(member_xp.c.xp), 0)).where(member_xp.c.guild_id == GUILD)
    async with engine.connect() as connection:
        return int((await connection.execute(query)).scalar_one())


def member_ids(members: int) -> range:
    return range(USER_BASE, USER_BASE + members)


def check(label: str, got: int, expected: int) -> None:
    if got != expected:
        raise SystemExit(f"{label}: the database holds {got} XP, the awards sum to {expected}")


# -- part (a): awards per second -------------------------------------------------------------------------


def naive_sqlite(path: Path, events: Events, count: int) -> float:
    """Award ``count`` events with one UPDATE and one commit each (stdlib sqlite3, WAL); return seconds."""
    connection = sqlite3.connect(path)
    try:
        connection.execute("PRAGMA journal_mode=WAL")
        cursor = connection.cursor()
        started = time.perf_counter()
        for user, amount in zip(events.users[:count], events.amounts[:count], strict=True):
            cursor.execute(NAIVE_UPDATE, (amount, user, GUILD))
            connection.commit()
        return time.perf_counter() - started
    finally:
        connection.close()


def handbook_batch_sqlite(path: Path, events: Events) -> float:
    """Award every event as one UPDATE each, all in one executemany and one commit; return seconds."""
    connection = sqlite3.connect(path)
    try:
        connection.execute("PRAGMA journal_mode=WAL")
        started = time.perf_counter()
        connection.executemany(
            NAIVE_UPDATE, zip(events.amounts, events.users, [GUILD] * len(events), strict=True)
        )
        connection.commit()
        return time.perf_counter() - started
    finally:
        connection.close()


async def botops_writer(engine: AsyncEngine, events: Events) -> float:
    """Award every event through a BatchedWriter with its defaults; return seconds until all is committed."""
    writer: BatchedWriter[tuple[int, int], XpDelta] = BatchedWriter(
        engine, write_xp_deltas, merge=XpDelta.merge, name="bench-xp"
    )
    await writer.start()
    users, amounts, times = events.users, events.amounts, events.times
    add = writer.add
    started = time.perf_counter()
    for start in range(0, len(events), FEED_CHUNK):
        end = start + FEED_CHUNK
        for user, amount, at in zip(users[start:end], amounts[start:end], times[start:end], strict=True):
            add((GUILD, user), XpDelta(amount, 1, at))
        await asyncio.sleep(0)
    await writer.stop()
    elapsed = time.perf_counter() - started
    flushes = ", ".join(f"{s * 1000:.0f}" for s in writer.flush_seconds)
    print(f"    botops run: {elapsed * 1000:.0f} ms, {writer.flushes} flushes of {flushes} ms", flush=True)
    return elapsed


class PeerAuthor(SimpleNamespace):
    """A discord.Member as far as ``award_xp`` looks: id, bot, guild, roles, and str() for its name."""

    def __str__(self) -> str:
        return f"member{self.id}"


def peer_messages(members: int) -> dict[int, Any]:
    """Stand-ins for discord.Message, one per member, with what ``award_xp`` reads and nothing else."""
    from discord import MessageType

    guild = SimpleNamespace(id=GUILD, get_role=lambda _id: None, get_channel=lambda _id: None)
    channel = SimpleNamespace(id=1)
    return {
        user: SimpleNamespace(
            guild=guild,
            author=PeerAuthor(id=user, bot=False, guild=guild, roles=[]),
            channel=channel,
            type=MessageType.default,
        )
        for user in member_ids(members)
    }


async def peer(folder: Path, events: Events, count: int, members: int) -> float:
    """Award ``count`` events through discordLevelingSystem's award_xp; return seconds."""
    from discordLevelingSystem import DiscordLevelingSystem

    path = folder / "DiscordLevelingSystem.db"
    # Its create_database_file runs its own event loop, which cannot run inside this one; this is its SQL.
    with contextlib.closing(sqlite3.connect(path)) as connection:
        connection.execute(PEER_DDL)
        connection.executemany(
            "INSERT INTO leaderboard VALUES (?, ?, ?, 0, 0, 0)",
            [(GUILD, user, f"member{user}") for user in member_ids(members)],
        )
        connection.commit()
    # Its cooldown (one award per member per 60 s) is opened wide, so every event is an award, as for
    # the other contenders; level-up announcements are off (there is no channel to send them to).
    system = DiscordLevelingSystem(rate=10**9, per=60.0, announce_level_up=False)
    await system.switch_connection(str(path))
    messages = peer_messages(members)
    try:
        started = time.perf_counter()
        for user, amount in zip(events.users[:count], events.amounts[:count], strict=True):
            await system.award_xp(amount=amount, message=messages[user])
        elapsed = time.perf_counter() - started
        rows = await system.sql_query_get("SELECT SUM(member_total_xp) FROM leaderboard")
    finally:
        await system._connection.close()
    check("peer", int(rows[0][0]), events.total(count))
    return elapsed


async def naive_postgres(url: str, events: Events, count: int) -> float:
    """Award ``count`` events with one UPDATE each in autocommit (a commit per message); return seconds."""
    connection = await asyncpg.connect(asyncpg_dsn(url))
    try:
        started = time.perf_counter()
        for user, amount in zip(events.users[:count], events.amounts[:count], strict=True):
            await connection.execute(NAIVE_UPDATE_PG, amount, user, GUILD)
        return time.perf_counter() - started
    finally:
        await connection.close()


def _runs(seconds: list[float]) -> str:
    return f"median of {len(seconds)} runs: " + ", ".join(f"{s * 1000:.0f}" for s in seconds) + " ms"


def rate(count: int, seconds: float) -> float:
    return count / seconds if seconds > 0 else float("inf")


def awards_row(
    bench: Bench, backend: str, contender: str, count: int, seconds: float, note: str = ""
) -> float:
    per_second = rate(count, seconds)
    bench.rows.append(Row("a", backend, contender, count, seconds, f"{per_second:,.0f} awards/s", note))
    print(f"  {backend} {contender}: {count:,} awards in {seconds:.2f} s = {per_second:,.0f}/s", flush=True)
    return per_second


async def part_a(bench: Bench) -> None:
    """Awards per second on SQLite (and PostgreSQL): naive, handbook batch, peer, botops."""
    sizes = bench.sizes
    events = make_events(sizes.events, sizes.members, bench.seed)
    settle_garbage_collector()
    naive_n, peer_n = min(sizes.naive_events, len(events)), min(sizes.peer_events, len(events))
    print(f"(a) {len(events):,} events over {sizes.members:,} members", flush=True)

    async def fresh_sqlite(name: str) -> Path:
        path = bench.folder / name / "bot.db"
        async with migrated_engine(sqlite_url(path)) as engine:
            await seed_members(engine, member_ids(sizes.members))
        return path

    async def sqlite_total(path: Path) -> int:
        async with migrated_engine(sqlite_url(path)) as engine:
            return await guild_total(engine)

    path = await fresh_sqlite("naive")
    naive = awards_row(
        bench, "sqlite", "naive UPDATE+commit (WAL)", naive_n, naive_sqlite(path, events, naive_n)
    )
    check("naive sqlite", await sqlite_total(path), events.total(naive_n))

    path = await fresh_sqlite("batch")
    awards_row(
        bench, "sqlite", "handbook executemany, 1 commit", len(events), handbook_batch_sqlite(path, events)
    )
    check("handbook batch", await sqlite_total(path), events.total())

    peer_folder = bench.folder / "peer"
    peer_folder.mkdir()
    peer_rate = awards_row(
        bench,
        "sqlite",
        "peer discordLevelingSystem",
        peer_n,
        await peer(peer_folder, events, peer_n, sizes.members),
    )

    runs = []
    for run in range(BOTOPS_RUNS):
        path = await fresh_sqlite(f"botops{run}")
        async with migrated_engine(sqlite_url(path)) as engine:
            runs.append(await botops_writer(engine, events))
            check("botops sqlite", await guild_total(engine), events.total())
    ours = awards_row(
        bench, "sqlite", "botops BatchedWriter", len(events), statistics.median(runs), _runs(runs)
    )
    bench.verdicts.append(
        (
            f"sqlite botops ÷ naive = {ours / naive:,.0f}x (goal ≥{GOALS['sqlite_vs_naive']:.0f}x)",
            "a",
            ours / naive >= GOALS["sqlite_vs_naive"],
        )
    )
    bench.verdicts.append(
        (
            f"sqlite botops ÷ peer = {ours / peer_rate:,.0f}x (goal ≥{GOALS['sqlite_vs_peer']:.0f}x)",
            "a",
            ours / peer_rate >= GOALS["sqlite_vs_peer"],
        )
    )

    if bench.postgres_url is None:
        print("  PostgreSQL skipped: BOTOPS_TEST_POSTGRES_URL is not set", flush=True)
        return
    async with scratch_postgres(bench.postgres_url) as url, migrated_engine(url) as engine:
        await seed_members(engine, member_ids(sizes.members))
        naive_pg = awards_row(
            bench,
            "postgresql",
            "naive UPDATE (autocommit)",
            naive_n,
            await naive_postgres(url, events, naive_n),
        )
        check("naive postgresql", await guild_total(engine), events.total(naive_n))
    runs = []
    for _ in range(BOTOPS_RUNS):
        async with scratch_postgres(bench.postgres_url) as url, migrated_engine(url) as engine:
            await seed_members(engine, member_ids(sizes.members))
            runs.append(await botops_writer(engine, events))
            check("botops postgresql", await guild_total(engine), events.total())
    ours_pg = awards_row(
        bench, "postgresql", "botops BatchedWriter", len(events), statistics.median(runs), _runs(runs)
    )
    bench.verdicts.append(
        (
            f"postgresql botops = {ours_pg:,.0f} awards/s, {ours_pg / naive_pg:,.0f}x naive "
            f"(goal ≥{GOALS['postgresql_awards']:,.0f}/s)",
            "a",
            ours_pg >= GOALS["postgresql_awards"],
        )
    )


# -- part (d): event-loop lag during a flush ---------------------------------------------------------------


class LagMonitor:
    """Sleep 1 ms again and again on the event loop and record how late each wake-up is, in ms."""

    def __init__(self) -> None:
        self.samples: list[float] = []
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        while True:
            started = time.perf_counter()
            await asyncio.sleep(0.001)
            self.samples.append((time.perf_counter() - started - 0.001) * 1000)

    @contextlib.asynccontextmanager
    async def watching(self) -> AsyncIterator[None]:
        self._task = asyncio.get_running_loop().create_task(self._run())
        await asyncio.sleep(0.003)  # the monitor is asleep in its loop before the work starts
        try:
            yield
        finally:
            await asyncio.sleep(0.002)  # one more wake-up after the work, to see its tail
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


def flush_deltas(rng: random.Random, rows: int, table_rows: int) -> dict[tuple[int, int], XpDelta]:
    users = rng.sample(range(USER_BASE, USER_BASE + table_rows), rows)
    return {(GUILD, user): XpDelta(rng.randint(15, 25), 1, T0 + timedelta(seconds=1)) for user in users}


def lag_row(
    bench: Bench, backend: str, contender: str, monitor: LagMonitor, flushes: int, seconds: list[float]
) -> tuple[float, float]:
    p99, worst = percentile(monitor.samples, 0.99), max(monitor.samples)
    bench.rows.append(
        Row(
            "d",
            backend,
            contender,
            flushes,
            statistics.median(seconds),
            f"lag p99 {p99:.2f} ms, worst {worst:.2f} ms",
            f"{len(monitor.samples)} samples, p50 {percentile(monitor.samples, 0.5):.2f} ms",
        )
    )
    print(
        f"  {backend} {contender}: flush median {statistics.median(seconds) * 1000:.1f} ms, "
        f"lag p99 {p99:.2f} ms, worst {worst:.2f} ms ({len(monitor.samples)} samples)",
        flush=True,
    )
    return p99, worst


async def writer_flushes(
    bench: Bench, engine: AsyncEngine, rng: random.Random
) -> tuple[LagMonitor, list[float]]:
    sizes = bench.sizes
    writer: BatchedWriter[tuple[int, int], XpDelta] = BatchedWriter(
        engine, write_xp_deltas, merge=XpDelta.merge, name="bench-lag"
    )
    monitor, seconds = LagMonitor(), []
    for _ in range(sizes.lag_flushes):
        for key, delta in flush_deltas(rng, sizes.flush_rows, sizes.lag_rows).items():
            writer.add(key, delta)
        async with monitor.watching():
            started = time.perf_counter()
            await writer.flush()
            seconds.append(time.perf_counter() - started)
    return monitor, seconds


async def part_d(bench: Bench) -> None:
    """Event-loop lag while a flush of ``flush_rows`` rows goes into a table of ``lag_rows`` rows."""
    sizes = bench.sizes
    rng = random.Random(bench.seed)
    print(f"(d) {sizes.flush_rows:,}-row flushes into {sizes.lag_rows:,} rows of one guild", flush=True)

    idle = LagMonitor()
    async with idle.watching():
        await asyncio.sleep(0.5)
    lag_row(bench, "-", "idle loop (the floor)", idle, 0, [0.0])

    path = bench.folder / "lag" / "bot.db"
    async with migrated_engine(sqlite_url(path)) as engine:
        print(f"  seeding {sizes.lag_rows:,} rows ...", flush=True)
        await seed_members(engine, member_ids(sizes.lag_rows))
        settle_garbage_collector()
        monitor, seconds = await writer_flushes(bench, engine, rng)
        p99, worst = lag_row(bench, "sqlite", "botops writer.flush()", monitor, sizes.lag_flushes, seconds)
        bench.verdicts.append(
            (
                f"sqlite lag during a flush: p99 {p99:.2f} ms (goal <{LAG_GOAL_P99_MS} ms), "
                f"worst {worst:.2f} ms (goal <{LAG_GOAL_WORST_MS:.0f} ms)",
                "d",
                p99 < LAG_GOAL_P99_MS and worst < LAG_GOAL_WORST_MS,
            )
        )

    # The same upsert through stdlib sqlite3, called on the event loop (same pragmas as botops' engine).
    blocking = sqlite3.connect(path, isolation_level=None)
    try:
        for pragma in ("busy_timeout = 5000", "journal_mode = WAL", "synchronous = NORMAL"):
            blocking.execute(f"PRAGMA {pragma}")
        monitor, seconds = LagMonitor(), []
        for _ in range(sizes.lag_flushes):
            deltas = flush_deltas(rng, sizes.flush_rows, sizes.lag_rows)
            rows = [
                (g, u, d.xp, d.messages, f"{d.last_awarded_at:%Y-%m-%d %H:%M:%S.%f}")
                for (g, u), d in deltas.items()
            ]
            async with monitor.watching():
                started = time.perf_counter()
                blocking.execute("BEGIN")
                blocking.executemany(STDLIB_UPSERT, rows)
                blocking.execute("COMMIT")
                seconds.append(time.perf_counter() - started)
        lag_row(bench, "sqlite", "stdlib sqlite3 on the loop", monitor, sizes.lag_flushes, seconds)
    finally:
        blocking.close()

    if bench.postgres_url is None:
        return
    async with scratch_postgres(bench.postgres_url) as url, migrated_engine(url) as engine:
        print(f"  seeding {sizes.lag_rows:,} rows on PostgreSQL ...", flush=True)
        connection = await asyncpg.connect(asyncpg_dsn(url))
        try:
            await connection.copy_records_to_table(
                "member_xp",
                records=((GUILD, user, 0, 0, T0) for user in member_ids(sizes.lag_rows)),
                columns=["guild_id", "user_id", "xp", "messages", "last_awarded_at"],
            )
            await connection.execute("ANALYZE member_xp")
        finally:
            await connection.close()
        settle_garbage_collector()
        monitor, seconds = await writer_flushes(bench, engine, rng)
        p99, worst = lag_row(
            bench, "postgresql", "botops writer.flush()", monitor, sizes.lag_flushes, seconds
        )
        bench.verdicts.append(
            (
                f"postgresql lag during a flush: p99 {p99:.2f} ms, worst {worst:.2f} ms",
                "d",
                p99 < LAG_GOAL_P99_MS and worst < LAG_GOAL_WORST_MS,
            )
        )


# -- (b) rank and leaderboard latency ------------------------------------------------------------------


async def part_b(bench: Bench) -> None:
    """/rank and /leaderboard latency on a million members (bench/levels_ranks.py prints its table)."""
    import levels_ranks  # bench/levels_ranks.py, beside this file; it runs alone too

    quick = bench.sizes == QUICK
    await levels_ranks.part_b(
        member_count=100_000 if quick else 1_000_000,
        sql_samples=200 if quick else 1000,
        memory_samples=20_000,
        peer_samples=5 if quick else 10,
    )


# -- (c) messages through the whole bot ---------------------------------------------------------------


async def part_c(bench: Bench) -> None:
    """Messages per second through botops and through a bare discord.py bot (bench/levels_bot.py)."""
    import levels_bot  # bench/levels_bot.py, beside this file: it starts the bots and the sandbox

    sizes = levels_bot.QUICK if bench.sizes == QUICK else levels_bot.FULL
    figures = await levels_bot.measure(sizes)
    n = sizes.messages
    for name, bot in figures.items():
        note = f"bot CPU {bot.cpu_per_message_us(n):.0f} µs/message, median of {sizes.runs}"
        if name == "botops":
            note += f", {statistics.median(run.level_ups for run in bot.runs):.0f} level-ups"
        rate = bot.rate(n)
        bench.rows.append(Row("c", "sqlite", name, n, n / rate, f"{rate:,.0f} msgs/s", note))
    ratio = figures["botops"].rate(n) / figures["bare discord.py"].rate(n)
    bench.verdicts.append(
        (
            f"botops handles {ratio:.2f}x the messages/s of a bare discord.py bot (goal ≥ "
            f"{levels_bot.GOAL_RATIO:.1f}x)",
            "c",
            ratio >= levels_bot.GOAL_RATIO,
        )
    )


# -- the table -------------------------------------------------------------------------------------------

PARTS: dict[str, Callable[[Bench], Awaitable[None]]] = {"a": part_a, "b": part_b, "c": part_c, "d": part_d}


def print_table(bench: Bench) -> None:
    print()
    header = ("part", "backend", "contender", "count", "seconds", "figure", "note")
    lines = [header] + [
        (r.part, r.backend, r.contender, f"{r.count:,}", f"{r.seconds:.3f}", r.figure, r.note)
        for r in bench.rows
    ]
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    for index, line in enumerate(lines):
        print(" | ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip())
        if index == 0:
            print("-|-".join("-" * width for width in widths))
    print()
    for text, part, met in bench.verdicts:
        print(f"({part}) {'MET   ' if met else 'MISSED'} {text}")
    print(f"\nsizes: {bench.sizes}")
    print(
        f"machine: {os.cpu_count()} CPUs, {platform.processor() or platform.machine()}, "
        f"Python {platform.python_version()}, SQLite {sqlite3.sqlite_version}"
    )


async def run(parts: list[str], sizes: Sizes, postgres_url: str | None, seed: int) -> None:
    with tempfile.TemporaryDirectory(prefix="botops-bench-levels-") as folder:
        bench = Bench(sizes, Path(folder), postgres_url, seed, [], [])
        for part in parts:
            await PARTS[part](bench)
        print_table(bench)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, for a sanity run")
    parser.add_argument(
        "--parts", default=",".join(PARTS), help=f"comma-separated parts to run (of {', '.join(PARTS)})"
    )
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get("BOTOPS_TEST_POSTGRES_URL") or None,
        help="a PostgreSQL server for a scratch database (default: BOTOPS_TEST_POSTGRES_URL)",
    )
    parser.add_argument("--seed", type=int, default=20250601)
    args = parser.parse_args()
    parts = [part.strip() for part in args.parts.split(",") if part.strip()]
    unknown = [part for part in parts if part not in PARTS]
    if unknown:
        parser.error(f"unknown part(s) {', '.join(unknown)}; this script has {', '.join(PARTS)}")
    asyncio.run(run(parts, QUICK if args.quick else FULL, args.postgres_url, args.seed))


if __name__ == "__main__":
    sys.exit(main())
