"""Benchmark /rank and /leaderboard on a guild of 1,000,000 members: COUNT(*), the peer, and GuildRanks.

Part (b) of the levels benchmark (issue 4). Run ``.venv/bin/python bench/levels_ranks.py``; ``--quick``
shrinks the guild to 100,000 members for a sanity run. One run builds, in a temporary folder:

* botops' database: a SQLite file migrated by ``botops.db.migrate.upgrade`` (so ``member_xp`` has its
  ``(guild_id, xp DESC)`` index), filled with one guild of N members;
* the peer's database: ``discordLevelingSystem``'s ``leaderboard`` table (its own DDL, no index), with
  the same members, for its ``get_rank_for``.

It then times, per call: the plain indexed ``1 + COUNT(*) WHERE xp > mine`` for random members, the top
ten (``ORDER BY xp DESC ... LIMIT 10``), both on raw sqlite3 (the database's own cost) and as
``botops.db.levels.rank_by_count`` / ``top_members`` on botops' async engine (what a command pays),
the peer's rank lookup, and :class:`GuildRanks`' ``rank_of`` and ``page(0, 10)``; then the one-time
load of the index from the database (``load_guild_xp``), and the memory the index of N members takes
(RSS, in a child process of its own). It prints p50/p99, ratios and the
goals (rank p99 < 1 ms, top ten p99 < 1 ms). See ``bench/README.md`` for the figures.

The peer comes with the ``bench`` extra (``pip install -e '.[bench]'``, which ``make bench-levels`` runs;
it is not a botops dependency); without it the peer's rows are skipped.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import math
import random
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any, TypeVar

import psutil
from sqlalchemy.ext.asyncio import AsyncEngine

from botops.db.engine import create_engine_for_url
from botops.db.levels import load_guild_xp, rank_by_count, top_members
from botops.db.migrate import upgrade
from botops.levels import GuildRanks, level_for, progress

T = TypeVar("T")

GUILD_ID = 1_100_000_000_000_000_000
RANK_GOAL_MS = 1.0
TOP_TEN_GOAL_MS = 1.0
SEED = 4

# The peer's table exactly as discordLevelingSystem.create_database_file creates it. That function runs
# its own event loop and leaves an aiosqlite connection open, so the bench runs the same DDL itself; the
# peer's verify_leaderboard_integrity check (run by get_rank_for) confirms the layout.
PEER_DDL = """
    CREATE TABLE leaderboard (
        guild_id INT NOT NULL,
        member_id INT NOT NULL,
        member_name TEXT NOT NULL,
        member_level INT NOT NULL,
        member_xp INT NOT NULL,
        member_total_xp INT NOT NULL
    );
"""
# The peer's leaderboard (each_member_data(guild, sort_by="xp", limit=10)) takes a real discord.Guild
# and asks get_rank_for (a full scan) for every member the guild has cached; this is its one query,
# after which it slices the first ten in Python.
PEER_TOP_SQL = (
    "SELECT member_id, member_name, member_level, member_xp, member_total_xp FROM leaderboard "
    "WHERE guild_id = ? ORDER BY member_total_xp DESC"
)
RANK_SQL = "SELECT 1 + COUNT(*) FROM member_xp WHERE guild_id = ? AND xp > ?"
TOP_TEN_SQL = "SELECT user_id, xp FROM member_xp WHERE guild_id = ? ORDER BY xp DESC, user_id ASC LIMIT 10"
TOP_TEN_PLAIN_SQL = "SELECT user_id, xp FROM member_xp WHERE guild_id = ? ORDER BY xp DESC LIMIT 10"


@dataclass(frozen=True)
class Timing:
    """Latencies of one kind of call, in seconds."""

    name: str
    samples: list[float]

    def percentile(self, fraction: float) -> float:
        ordered = sorted(self.samples)
        return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]

    @property
    def p50(self) -> float:
        return self.percentile(0.50)

    @property
    def p99(self) -> float:
        return self.percentile(0.99)


def members(count: int, seed: int = SEED) -> Iterator[tuple[int, int]]:
    """Yield ``count`` distinct (user_id, xp): snowflake-sized ids, XP heavy-tailed as on real guilds."""
    rng = random.Random(seed)
    # Snowflakes of accounts made from 2017 to 2025; most members have little XP and a few a lot,
    # so low XP values are shared by many members (ties) as they are in a real guild.
    for user_id in rng.sample(range(200_000_000_000_000_000, 1_400_000_000_000_000_000), count):
        yield user_id, int(rng.lognormvariate(6.0, 2.0))


async def build_botops_database(path: Path, rows: list[tuple[int, int]]) -> None:
    """Migrate a SQLite file to botops' head and fill member_xp with one guild."""
    engine = create_engine_for_url(f"sqlite+aiosqlite:///{path}")
    try:
        await upgrade(engine)
    finally:
        await engine.dispose()
    with _sqlite(path) as connection:
        connection.execute("PRAGMA synchronous = OFF")
        connection.executemany(
            "INSERT INTO member_xp (guild_id, user_id, xp, messages) VALUES (?, ?, ?, ?)",
            ((GUILD_ID, user_id, xp, xp // 20) for user_id, xp in rows),
        )


def build_peer_database(path: Path, rows: list[tuple[int, int]]) -> None:
    """Create the peer's leaderboard table with the same members."""
    with _sqlite(path) as connection:
        connection.execute(PEER_DDL)
        connection.executemany(
            "INSERT INTO leaderboard VALUES (?, ?, ?, ?, ?, ?)",
            (
                (GUILD_ID, user_id, f"member{index}", level_for(xp), progress(xp).xp_into_level, xp)
                for index, (user_id, xp) in enumerate(rows)
            ),
        )


class _sqlite:
    """A sqlite3 connection that commits on success and always closes (sqlite3's own does not close)."""

    def __init__(self, path: Path) -> None:
        self.connection = sqlite3.connect(path)

    def __enter__(self) -> sqlite3.Connection:
        return self.connection

    def __exit__(self, *exc: object) -> None:
        try:
            if exc[0] is None:
                self.connection.commit()
        finally:
            self.connection.close()


def time_sync(name: str, call: Callable[[T], object], arguments: Sequence[T]) -> Timing:
    """Time ``call`` once for each argument."""
    samples = []
    for argument in arguments:
        started = time.perf_counter()
        call(argument)
        samples.append(time.perf_counter() - started)
    return Timing(name, samples)


async def time_async(name: str, call: Callable[[T], Awaitable[object]], arguments: Sequence[T]) -> Timing:
    """Time ``await call`` once for each argument, one after the other."""
    samples = []
    for argument in arguments:
        started = time.perf_counter()
        await call(argument)
        samples.append(time.perf_counter() - started)
    return Timing(name, samples)


def index_memory(count: int) -> dict[str, float]:
    """Measure, in a fresh interpreter, the RSS an index of ``count`` members adds."""
    child = subprocess.run(  # noqa: S603 - our own interpreter and script
        [sys.executable, __file__, "--index-memory", str(count)],
        capture_output=True,
        text=True,
        check=True,
        timeout=600,
    )
    result: dict[str, float] = json.loads(child.stdout)
    return result


def _measure_index_memory(count: int) -> None:
    process = psutil.Process()
    gc.collect()
    before = process.memory_info().rss
    # Rows stream in from a generator, as from a database cursor, so no list of them stays resident.
    ranks = GuildRanks(members(count))
    gc.collect()
    after = process.memory_info().rss
    assert len(ranks) == count
    print(json.dumps({"members": count, "rss_bytes": after - before, "per_member": (after - before) / count}))


async def part_b(member_count: int, sql_samples: int, memory_samples: int, peer_samples: int) -> None:
    """Part (b): /rank and /leaderboard latency on a guild of ``member_count`` members."""
    rng = random.Random(SEED + 1)
    print(f"part (b): rank and top ten on a guild of {member_count:,} members (SQLite)")
    with tempfile.TemporaryDirectory(prefix="botops-bench-levels-") as folder:
        database = Path(folder) / "bot.db"
        rows = list(members(member_count))
        started = time.perf_counter()
        await build_botops_database(database, rows)
        print(f"  built botops' database in {time.perf_counter() - started:.1f} s")
        peer_path = Path(folder) / "DiscordLevelingSystem.db"
        peer = _peer_available()
        if peer:
            started = time.perf_counter()
            build_peer_database(peer_path, rows)
            print(f"  built the peer's database in {time.perf_counter() - started:.1f} s")
        sql_members = rng.choices(rows, k=sql_samples)
        memory_members = [user_id for user_id, _ in rng.choices(rows, k=memory_samples)]
        del rows
        timings = time_raw_sqlite(database, [xp for _, xp in sql_members])
        engine = create_engine_for_url(f"sqlite+aiosqlite:///{database}")
        try:
            timings += await time_engine(engine, [xp for _, xp in sql_members])
            load_started = time.perf_counter()
            loaded = await load_guild_xp(engine, GUILD_ID)
            load_query = time.perf_counter() - load_started
            build_started = time.perf_counter()
            ranks = GuildRanks(loaded)
            load_build = time.perf_counter() - build_started
            del loaded
            expected_top = await top_members(engine, GUILD_ID, 0, 10)
            expected_ranks = [
                (user_id, await rank_by_count(engine, GUILD_ID, xp)) for user_id, xp in sql_members[:50]
            ]
        finally:
            await engine.dispose()
        if peer:
            timings += await time_peer(peer_path, [user_id for user_id, _ in sql_members[:peer_samples]])

    # GuildRanks, checked against the database's answers before it is timed.
    assert ranks.page(0, 10) == expected_top, "GuildRanks' top ten differs from the database's"
    assert all(ranks.rank_of(user_id) == rank for user_id, rank in expected_ranks), "a rank differs"
    timings.append(time_sync("GuildRanks.rank_of", ranks.rank_of, memory_members))
    timings.append(time_sync("GuildRanks.page(0, 10)", lambda _: ranks.page(0, 10), memory_members))
    memory = index_memory(member_count)
    _report(timings, load_query, load_build, memory)


def time_raw_sqlite(path: Path, xps: list[int]) -> list[Timing]:
    """Time the rank and top-ten queries on a plain sqlite3 connection: the database's own cost."""
    raw = sqlite3.connect(path)
    try:
        for _ in range(20):  # warm the page cache
            raw.execute(RANK_SQL, (GUILD_ID, 0)).fetchone()
        return [
            time_sync(
                "COUNT(*) rank, raw sqlite3",
                lambda xp: raw.execute(RANK_SQL, (GUILD_ID, xp)).fetchone(),
                xps,
            ),
            time_sync(
                "top ten (xp DESC, user_id), raw sqlite3",
                lambda _: raw.execute(TOP_TEN_SQL, (GUILD_ID,)).fetchall(),
                xps,
            ),
            time_sync(
                "top ten (xp DESC only), raw sqlite3",
                lambda _: raw.execute(TOP_TEN_PLAIN_SQL, (GUILD_ID,)).fetchall(),
                xps,
            ),
        ]
    finally:
        raw.close()


async def time_engine(engine: AsyncEngine, xps: list[int]) -> list[Timing]:
    """Time the same queries through botops' engine (SQLAlchemy Core, aiosqlite): what a command pays."""
    await rank_by_count(engine, GUILD_ID, 0)  # opens the pooled connection and sets its pragmas
    return [
        await time_async("COUNT(*) rank, botops engine", lambda xp: rank_by_count(engine, GUILD_ID, xp), xps),
        await time_async("top ten, botops engine", lambda _: top_members(engine, GUILD_ID, 0, 10), xps),
    ]


async def time_peer(path: Path, user_ids: list[int]) -> list[Timing]:
    """Time the peer's rank lookup and its leaderboard query on its own database file."""
    from discordLevelingSystem import DiscordLevelingSystem  # type: ignore[import-untyped]

    system = DiscordLevelingSystem()
    await system.switch_connection(str(path))
    connection: Any = system._connection  # the peer has no public close
    try:
        # get_rank_for fetches every member id of the guild sorted by XP, then list.index; it reads
        # only member.id and member.guild.id, so a stand-in member will do.
        rank = await time_async(
            "peer get_rank_for (discordLevelingSystem)",
            lambda user_id: system.get_rank_for(
                SimpleNamespace(id=user_id, guild=SimpleNamespace(id=GUILD_ID))
            ),
            user_ids,
        )

        async def peer_top(_: int) -> object:
            return (await connection.execute_fetchall(PEER_TOP_SQL, (GUILD_ID,)))[:10]

        top = await time_async("peer top ten (its query, no per-member rank)", peer_top, user_ids)
    finally:
        await connection.close()
    return [rank, top]


def _peer_available() -> bool:
    try:
        import discordLevelingSystem  # noqa: F401
    except ImportError:
        print("  discordLevelingSystem is not installed: the peer's rows are skipped")
        return False
    return True


def _report(timings: list[Timing], load_query: float, load_build: float, memory: dict[str, float]) -> None:
    by_name = {timing.name: timing for timing in timings}
    print()
    print(f"  {'query':<46} {'n':>6} {'p50':>11} {'p99':>11}")
    for timing in timings:
        print(f"  {timing.name:<46} {len(timing.samples):>6} {_ms(timing.p50):>11} {_ms(timing.p99):>11}")
    print()
    print(f"  one-time load: SELECT of the guild {load_query:.2f} s + GuildRanks.load {load_build:.2f} s")
    print(
        f"  GuildRanks memory ({int(memory['members']):,} members): RSS +{memory['rss_bytes'] / 1e6:.0f} MB, "
        f"{memory['per_member']:.0f} bytes a member"
    )
    rank = by_name["GuildRanks.rank_of"]
    page = by_name["GuildRanks.page(0, 10)"]
    print()
    print("  ratios (p99 of the other ÷ p99 of GuildRanks):")
    for name in (
        "COUNT(*) rank, raw sqlite3",
        "COUNT(*) rank, botops engine",
        "peer get_rank_for (discordLevelingSystem)",
    ):
        if name in by_name:
            print(f"    {name:<44} {by_name[name].p99 / rank.p99:>12,.0f}x")
    for name in (
        "top ten (xp DESC, user_id), raw sqlite3",
        "top ten, botops engine",
        "peer top ten (its query, no per-member rank)",
    ):
        if name in by_name:
            print(f"    {name:<44} {by_name[name].p99 / page.p99:>12,.0f}x")
    print()
    print(f"  goal rank p99 < {RANK_GOAL_MS:g} ms: {_verdict(rank.p99, RANK_GOAL_MS)} ({_ms(rank.p99)})")
    verdict = _verdict(page.p99, TOP_TEN_GOAL_MS)
    print(f"  goal top ten p99 < {TOP_TEN_GOAL_MS:g} ms: {verdict} ({_ms(page.p99)})")


def _ms(seconds: float) -> str:
    milliseconds = seconds * 1000
    if milliseconds >= 100:
        return f"{milliseconds:,.0f} ms"
    if milliseconds >= 1:
        return f"{milliseconds:.1f} ms"
    return f"{milliseconds * 1000:.1f} µs"


def _verdict(seconds: float, goal_ms: float) -> str:
    return "met" if seconds * 1000 < goal_ms else "MISSED"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="100,000 members and fewer samples")
    parser.add_argument("--members", type=int, default=None, help="members of the guild (1,000,000)")
    parser.add_argument("--samples", type=int, default=None, help="calls per SQL measurement (1000)")
    parser.add_argument("--peer-samples", type=int, default=None, help="calls of the peer (10)")
    parser.add_argument("--index-memory", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.index_memory is not None:
        _measure_index_memory(args.index_memory)
        return
    member_count = args.members or (100_000 if args.quick else 1_000_000)
    sql_samples = args.samples or (200 if args.quick else 1000)
    peer_samples = args.peer_samples or (5 if args.quick else 10)
    asyncio.run(part_b(member_count, sql_samples, 20_000, peer_samples))


if __name__ == "__main__":
    main()
