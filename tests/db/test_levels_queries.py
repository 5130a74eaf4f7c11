"""The levels queries: the upsert of XP deltas on both databases, a member's XP, ranks and the leaderboard."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from botops.db import migrate
from botops.db.engine import create_engine_for_url
from botops.db.levels import (
    CHUNK_ROWS,
    XpDelta,
    load_guild_xp,
    member_xp_of,
    merge_xp_deltas,
    rank_by_count,
    top_members,
    write_xp_deltas,
)
from botops.db.schema import member_xp
from tests.db.databases import POSTGRES_URL_VARIABLE, temporary_database

GUILD = 100
OTHER_GUILD = 200
T0 = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)


@pytest_asyncio.fixture
async def migrated(engine: AsyncEngine) -> AsyncEngine:
    """The test database at the code's head revision."""
    await migrate.upgrade(engine)
    return engine


async def _write(engine: AsyncEngine, deltas: dict[tuple[int, int], XpDelta]) -> None:
    async with engine.begin() as connection:
        await write_xp_deltas(connection, deltas)


async def _rows(engine: AsyncEngine) -> dict[tuple[int, int], tuple[int, int, datetime | None]]:
    """Every row as (xp, messages, last_awarded_at in UTC), keyed by (guild_id, user_id)."""
    async with engine.connect() as connection:
        rows = await connection.execute(select(member_xp))
    return {(row.guild_id, row.user_id): (row.xp, row.messages, _as_utc(row.last_awarded_at)) for row in rows}


def _as_utc(moment: datetime | None) -> datetime | None:
    # SQLite has no time zone type and hands back the UTC time it stored, without a zone.
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=UTC)


async def _seed(engine: AsyncEngine, guild_id: int, xp_by_user: dict[int, int]) -> None:
    await _write(engine, {(guild_id, user_id): XpDelta(xp, 1, T0) for user_id, xp in xp_by_user.items()})


# -- XpDelta -------------------------------------------------------------------------------------------


def test_merging_deltas_sums_xp_and_messages_and_keeps_the_later_time() -> None:
    older = XpDelta(15, 1, T0 + timedelta(seconds=5))
    newer = XpDelta(20, 2, T0)

    assert merge_xp_deltas(older, newer) == XpDelta(35, 3, T0 + timedelta(seconds=5))


# -- write_xp_deltas -----------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_writing_deltas_creates_the_rows_of_new_members(migrated: AsyncEngine) -> None:
    await _write(migrated, {(GUILD, 1): XpDelta(15, 1, T0), (GUILD, 2): XpDelta(40, 2, T0)})

    assert await _rows(migrated) == {(GUILD, 1): (15, 1, T0), (GUILD, 2): (40, 2, T0)}


@pytest.mark.asyncio
async def test_writing_deltas_adds_to_existing_rows(migrated: AsyncEngine) -> None:
    await _write(migrated, {(GUILD, 1): XpDelta(15, 1, T0)})

    await _write(migrated, {(GUILD, 1): XpDelta(20, 1, T0 + timedelta(minutes=1))})

    assert await _rows(migrated) == {(GUILD, 1): (35, 2, T0 + timedelta(minutes=1))}


@pytest.mark.asyncio
async def test_an_older_award_time_never_moves_last_awarded_at_back(migrated: AsyncEngine) -> None:
    await _write(migrated, {(GUILD, 1): XpDelta(15, 1, T0)})

    await _write(migrated, {(GUILD, 1): XpDelta(20, 1, T0 - timedelta(hours=1))})

    assert await _rows(migrated) == {(GUILD, 1): (35, 2, T0)}


@pytest.mark.asyncio
async def test_a_member_set_by_an_administrator_gets_an_award_time_with_the_first_award(
    migrated: AsyncEngine,
) -> None:
    await _write(migrated, {(GUILD, 1): XpDelta(100, 0, None)})  # /xp add: no award, no award time

    await _write(migrated, {(GUILD, 1): XpDelta(15, 1, T0)})

    assert await _rows(migrated) == {(GUILD, 1): (115, 1, T0)}


@pytest.mark.asyncio
async def test_award_times_in_other_zones_are_stored_as_the_same_instant(migrated: AsyncEngine) -> None:
    berlin = timezone(timedelta(hours=2))

    await _write(migrated, {(GUILD, 1): XpDelta(15, 1, T0.astimezone(berlin))})

    assert await _rows(migrated) == {(GUILD, 1): (15, 1, T0)}


@pytest.mark.asyncio
async def test_award_times_are_stored_exactly_as_sqlalchemy_stores_a_datetime(migrated: AsyncEngine) -> None:
    moment = T0 + timedelta(days=400, seconds=3723, microseconds=45_006)
    await _write(migrated, {(GUILD, 1): XpDelta(15, 1, moment)})
    async with migrated.begin() as connection:
        await connection.execute(member_xp.insert().values(guild_id=GUILD, user_id=2, last_awarded_at=moment))
        stored = (
            await connection.execute(text("SELECT user_id, last_awarded_at FROM member_xp ORDER BY user_id"))
        ).all()

    assert stored[0][1] == stored[1][1]
    assert (await _rows(migrated))[(GUILD, 1)][2] == moment


@pytest.mark.asyncio
async def test_a_delta_without_a_time_keeps_the_stored_award_time(migrated: AsyncEngine) -> None:
    await _write(migrated, {(GUILD, 1): XpDelta(15, 1, T0)})

    await _write(migrated, {(GUILD, 1): XpDelta(-5, 0, None), (GUILD, 2): XpDelta(30, 0, None)})

    assert await _rows(migrated) == {(GUILD, 1): (10, 1, T0), (GUILD, 2): (30, 0, None)}


@pytest.mark.asyncio
async def test_snowflake_sized_ids_are_written_exactly(migrated: AsyncEngine) -> None:
    guild_id, user_id = 2**63 - 2, 2**63 - 1

    await _write(migrated, {(guild_id, user_id): XpDelta(15, 1, T0)})

    assert await _rows(migrated) == {(guild_id, user_id): (15, 1, T0)}


@pytest.mark.asyncio
async def test_a_batch_of_several_chunks_is_written_whole(migrated: AsyncEngine) -> None:
    members = CHUNK_ROWS * 2 + 7
    deltas = {(GUILD, user_id): XpDelta(user_id % 11, 1, T0) for user_id in range(members)}

    await _write(migrated, deltas)
    await _write(migrated, deltas)

    rows = await _rows(migrated)
    assert len(rows) == members
    assert all(rows[(GUILD, user_id)][:2] == (2 * (user_id % 11), 2) for user_id in range(members))


@pytest.mark.asyncio
async def test_writing_no_deltas_does_nothing(migrated: AsyncEngine) -> None:
    await _write(migrated, {})

    assert await _rows(migrated) == {}


@pytest.mark.asyncio
@pytest.mark.skipif(not os.environ.get(POSTGRES_URL_VARIABLE), reason=f"{POSTGRES_URL_VARIABLE} is not set")
async def test_sqlite_executemany_and_postgresql_unnest_upserts_leave_the_same_rows(tmp_path: Path) -> None:
    batches = [
        {(GUILD, 1): XpDelta(15, 1, T0), (GUILD, 2): XpDelta(25, 1, T0), (OTHER_GUILD, 1): XpDelta(5, 1, T0)},
        {(GUILD, 1): XpDelta(20, 2, T0 + timedelta(seconds=30)), (GUILD, 3): XpDelta(17, 1, T0)},
        {(GUILD, 2): XpDelta(1, 1, T0 - timedelta(seconds=30)), (GUILD, 3): XpDelta(3, 1, T0)},
    ]
    results: list[dict[Any, Any]] = []
    for backend in ("sqlite", "postgresql"):
        async with temporary_database(backend, tmp_path / backend) as url:
            engine = create_engine_for_url(url)
            try:
                await migrate.upgrade(engine)
                for batch in batches:
                    await _write(engine, batch)
                results.append(await _rows(engine))
            finally:
                await engine.dispose()

    sqlite_rows, postgresql_rows = results
    assert sqlite_rows == postgresql_rows
    assert sqlite_rows[(GUILD, 1)] == (35, 3, T0 + timedelta(seconds=30))


# -- one member ----------------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_a_member_without_a_row_has_zero_xp(migrated: AsyncEngine) -> None:
    assert await member_xp_of(migrated, GUILD, 1) == 0


@pytest.mark.asyncio
async def test_member_xp_of_reads_the_members_row_in_that_guild(migrated: AsyncEngine) -> None:
    await _seed(migrated, GUILD, {1: 40})
    await _seed(migrated, OTHER_GUILD, {1: 7})

    assert await member_xp_of(migrated, GUILD, 1) == 40


# -- a guild's order -----------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_top_members_orders_by_xp_then_by_user_id(migrated: AsyncEngine) -> None:
    await _seed(migrated, GUILD, {5: 10, 3: 30, 4: 10, 1: 20, 2: 30})

    assert await top_members(migrated, GUILD, 0, 10) == [(2, 30), (3, 30), (1, 20), (4, 10), (5, 10)]


@pytest.mark.asyncio
async def test_top_members_pages_with_offset_and_limit(migrated: AsyncEngine) -> None:
    await _seed(migrated, GUILD, {user_id: user_id * 10 for user_id in range(1, 26)})

    page = await top_members(migrated, GUILD, 10, 10)

    assert page == [(user_id, user_id * 10) for user_id in range(15, 5, -1)]


@pytest.mark.asyncio
async def test_top_members_sees_only_the_guild_asked_for(migrated: AsyncEngine) -> None:
    await _seed(migrated, GUILD, {1: 10})
    await _seed(migrated, OTHER_GUILD, {2: 99})

    assert await top_members(migrated, GUILD, 0, 10) == [(1, 10)]


@pytest.mark.asyncio
async def test_top_members_past_the_last_page_is_empty(migrated: AsyncEngine) -> None:
    await _seed(migrated, GUILD, {1: 10})

    assert await top_members(migrated, GUILD, 10, 10) == []


@pytest.mark.asyncio
async def test_top_members_refuses_a_negative_offset(migrated: AsyncEngine) -> None:
    with pytest.raises(ValueError, match="offset"):
        await top_members(migrated, GUILD, -1, 10)


@pytest.mark.asyncio
async def test_rank_counts_only_members_with_more_xp(migrated: AsyncEngine) -> None:
    await _seed(migrated, GUILD, {1: 50, 2: 40, 3: 30})

    assert await rank_by_count(migrated, GUILD, 40) == 2


@pytest.mark.asyncio
async def test_members_with_equal_xp_share_a_rank(migrated: AsyncEngine) -> None:
    await _seed(migrated, GUILD, {1: 50, 2: 40, 3: 40, 4: 30})

    assert await rank_by_count(migrated, GUILD, 40) == 2
    assert await rank_by_count(migrated, GUILD, 30) == 4


@pytest.mark.asyncio
async def test_rank_ignores_other_guilds(migrated: AsyncEngine) -> None:
    await _seed(migrated, GUILD, {1: 10})
    await _seed(migrated, OTHER_GUILD, {2: 99})

    assert await rank_by_count(migrated, GUILD, 10) == 1


@pytest.mark.asyncio
async def test_the_rank_of_an_empty_guild_is_one(migrated: AsyncEngine) -> None:
    assert await rank_by_count(migrated, GUILD, 0) == 1


@pytest.mark.asyncio
async def test_load_guild_xp_returns_every_member_of_that_guild(migrated: AsyncEngine) -> None:
    await _seed(migrated, GUILD, {1: 10, 2: 20})
    await _seed(migrated, OTHER_GUILD, {3: 30})

    assert sorted(await load_guild_xp(migrated, GUILD)) == [(1, 10), (2, 20)]


@pytest.mark.asyncio
@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(xp_by_user=st.dictionaries(st.integers(1, 40), st.integers(0, 60), max_size=30))
async def test_ranks_and_pages_agree_with_sorting_in_python(
    migrated: AsyncEngine, xp_by_user: dict[int, int]
) -> None:
    async with migrated.begin() as connection:
        await connection.execute(delete(member_xp))
    await _seed(migrated, GUILD, xp_by_user)
    expected_order = sorted(xp_by_user.items(), key=lambda item: (-item[1], item[0]))

    assert await top_members(migrated, GUILD, 0, 100) == expected_order
    for xp in set(xp_by_user.values()):
        assert await rank_by_count(migrated, GUILD, xp) == 1 + sum(1 for v in xp_by_user.values() if v > xp)
