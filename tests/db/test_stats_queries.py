"""The command statistics queries on both databases: the hourly upsert, top lists, totals, hourly errors."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import pytest_asyncio
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from botops.db import migrate
from botops.db.schema import command_usage
from botops.db.stats import (
    COMMAND_NAME_LENGTH,
    ERROR_HOURS,
    UsageDelta,
    UsageKey,
    UsageTotals,
    errors_per_hour,
    hour_of,
    merge_usage,
    sparkline,
    start_of_hour,
    top_commands,
    usage_summary,
    usage_totals,
    window_start,
    write_command_usage,
)

GUILD = 100
OTHER_GUILD = 200
NOW = datetime(2025, 6, 10, 12, 30, tzinfo=UTC)
HOUR = hour_of(NOW)


@pytest_asyncio.fixture
async def migrated(engine: AsyncEngine) -> AsyncEngine:
    """The test database at the code's head revision."""
    await migrate.upgrade(engine)
    return engine


async def _write(engine: AsyncEngine, batch: dict[UsageKey, UsageDelta]) -> None:
    async with engine.begin() as connection:
        await write_command_usage(connection, batch)


async def _use(
    engine: AsyncEngine,
    command: str,
    *,
    uses: int = 1,
    hours_ago: int = 0,
    guild_id: int = GUILD,
    outcome: str = "success",
    kind: str = "slash",
) -> None:
    await _write(engine, {(HOUR - hours_ago, guild_id, command, kind, outcome): UsageDelta(uses, 0.5 * uses)})


async def _rows(engine: AsyncEngine) -> dict[UsageKey, tuple[int, float]]:
    async with engine.connect() as connection:
        rows = await connection.execute(select(command_usage))
    return {
        (row.hour, row.guild_id, row.command, row.kind, row.outcome): (row.uses, row.total_seconds)
        for row in rows
    }


# -- hours ---------------------------------------------------------------------------------------------


def test_an_hour_is_counted_in_hours_since_1970_utc() -> None:
    assert hour_of(datetime(1970, 1, 2, 1, 59, tzinfo=UTC)) == 25


def test_unix_time_and_a_datetime_of_the_same_instant_fall_in_the_same_hour() -> None:
    assert hour_of(NOW.timestamp()) == hour_of(NOW)


def test_a_naive_datetime_is_taken_as_utc() -> None:
    assert hour_of(NOW.replace(tzinfo=None)) == HOUR


def test_a_window_of_24_hours_starts_23_hours_before_the_current_hours_start() -> None:
    assert window_start(NOW, 24) == datetime(2025, 6, 9, 13, 0, tzinfo=UTC)


@given(moment=st.datetimes(min_value=datetime(1970, 1, 1), timezones=st.just(UTC)))
def test_the_start_of_a_moments_hour_is_at_most_an_hour_before_it(moment: datetime) -> None:
    start = start_of_hour(hour_of(moment))

    assert start <= moment < start + timedelta(hours=1)
    assert start.minute == start.second == start.microsecond == 0


def test_a_window_of_no_hours_is_refused() -> None:
    with pytest.raises(ValueError, match="at least one hour"):
        window_start(NOW, 0)


# -- merging and the sparkline --------------------------------------------------------------------------


def test_merging_usage_adds_uses_and_seconds() -> None:
    assert merge_usage(UsageDelta(2, 1.5), UsageDelta(1, 0.25)) == UsageDelta(3, 1.75)


def test_a_sparkline_without_errors_is_flat() -> None:
    assert sparkline([0, 0, 0]) == "▁▁▁"


def test_a_sparkline_scales_to_the_busiest_hour_and_shows_a_single_error_next_to_many() -> None:
    assert sparkline([0, 1, 50, 100]) == "▁▂▅█"


# -- write_command_usage ---------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_writing_usage_creates_a_row_per_hour_guild_command_kind_and_outcome(
    migrated: AsyncEngine,
) -> None:
    await _write(
        migrated,
        {
            (HOUR, GUILD, "greet", "slash", "success"): UsageDelta(2, 1.0),
            (HOUR, GUILD, "greet", "slash", "error"): UsageDelta(1, 0.5),
            (HOUR, 0, "greet", "text", "success"): UsageDelta(1, 0.25),
        },
    )

    assert await _rows(migrated) == {
        (HOUR, GUILD, "greet", "slash", "success"): (2, 1.0),
        (HOUR, GUILD, "greet", "slash", "error"): (1, 0.5),
        (HOUR, 0, "greet", "text", "success"): (1, 0.25),
    }


@pytest.mark.asyncio
async def test_writing_usage_adds_uses_and_seconds_to_an_existing_row(migrated: AsyncEngine) -> None:
    key = (HOUR, GUILD, "greet", "slash", "success")
    await _write(migrated, {key: UsageDelta(2, 1.0)})

    await _write(migrated, {key: UsageDelta(3, 0.5)})

    assert await _rows(migrated) == {key: (5, 1.5)}


@pytest.mark.asyncio
async def test_names_that_coincide_once_cut_to_the_column_are_summed_into_one_row(
    migrated: AsyncEngine,
) -> None:
    long = "x" * COMMAND_NAME_LENGTH
    batch = {
        (HOUR, GUILD, long + "a", "slash", "success"): UsageDelta(1, 0.5),
        (HOUR, GUILD, long + "b", "slash", "success"): UsageDelta(2, 0.5),
    }

    await _write(migrated, batch)

    assert await _rows(migrated) == {(HOUR, GUILD, long, "slash", "success"): (3, 1.0)}
    assert batch[(HOUR, GUILD, long + "a", "slash", "success")] == UsageDelta(
        1, 0.5
    )  # the batch is untouched


@pytest.mark.asyncio
async def test_snowflake_sized_guild_ids_are_written_exactly(migrated: AsyncEngine) -> None:
    key = (HOUR, 2**63 - 1, "greet", "slash", "success")

    await _write(migrated, {key: UsageDelta(1, 0.5)})

    assert await _rows(migrated) == {key: (1, 0.5)}


@pytest.mark.asyncio
async def test_writing_no_usage_does_nothing(migrated: AsyncEngine) -> None:
    await _write(migrated, {})

    assert await _rows(migrated) == {}


# -- top_commands ----------------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_top_commands_orders_by_uses_then_by_name(migrated: AsyncEngine) -> None:
    await _use(migrated, "rank", uses=2)
    await _use(migrated, "greet", uses=5)
    await _use(migrated, "health", uses=2)

    top = await top_commands(migrated, since=None, guild_id=GUILD)

    assert top == [("greet", 5), ("health", 2), ("rank", 2)]


@pytest.mark.asyncio
async def test_top_commands_counts_every_outcome_and_kind_as_a_use(migrated: AsyncEngine) -> None:
    await _use(migrated, "greet", outcome="success")
    await _use(migrated, "greet", outcome="refused")
    await _use(migrated, "greet", outcome="error", kind="text")

    assert await top_commands(migrated, since=None, guild_id=GUILD) == [("greet", 3)]


@pytest.mark.asyncio
async def test_top_commands_of_24_hours_leaves_out_older_hours(migrated: AsyncEngine) -> None:
    await _use(migrated, "greet", hours_ago=0)
    await _use(migrated, "greet", hours_ago=23)
    await _use(migrated, "greet", hours_ago=24)

    top = await top_commands(migrated, since=window_start(NOW, 24), guild_id=GUILD)

    assert top == [("greet", 2)]


@pytest.mark.asyncio
async def test_top_commands_of_all_time_counts_every_hour(migrated: AsyncEngine) -> None:
    await _use(migrated, "greet", hours_ago=0)
    await _use(migrated, "greet", hours_ago=24 * 400)

    assert await top_commands(migrated, since=None, guild_id=GUILD) == [("greet", 2)]


@pytest.mark.asyncio
async def test_top_commands_of_a_guild_leaves_out_other_guilds(migrated: AsyncEngine) -> None:
    await _use(migrated, "greet", guild_id=GUILD)
    await _use(migrated, "rank", guild_id=OTHER_GUILD)

    assert await top_commands(migrated, since=None, guild_id=GUILD) == [("greet", 1)]


@pytest.mark.asyncio
async def test_top_commands_of_the_whole_bot_sums_every_guild_and_direct_messages(
    migrated: AsyncEngine,
) -> None:
    await _use(migrated, "greet", guild_id=GUILD)
    await _use(migrated, "greet", guild_id=OTHER_GUILD)
    await _use(migrated, "greet", guild_id=0)

    assert await top_commands(migrated, since=None, guild_id=None) == [("greet", 3)]


@pytest.mark.asyncio
async def test_top_commands_returns_at_most_limit_commands(migrated: AsyncEngine) -> None:
    for number in range(12):
        await _use(migrated, f"command{number:02}", uses=number + 1)

    top = await top_commands(migrated, since=None, guild_id=GUILD, limit=10)

    assert [command for command, _ in top] == [f"command{number:02}" for number in range(11, 1, -1)]


@pytest.mark.asyncio
async def test_top_commands_refuses_a_limit_below_one(migrated: AsyncEngine) -> None:
    with pytest.raises(ValueError, match="limit"):
        await top_commands(migrated, since=None, guild_id=GUILD, limit=0)


@pytest.mark.asyncio
async def test_top_commands_of_an_empty_table_is_empty(migrated: AsyncEngine) -> None:
    assert await top_commands(migrated, since=None, guild_id=None) == []


# -- usage_totals ----------------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_usage_totals_count_uses_refusals_errors_and_seconds(migrated: AsyncEngine) -> None:
    await _use(migrated, "greet", uses=3)
    await _use(migrated, "greet", outcome="refused")
    await _use(migrated, "boom", uses=2, outcome="error")

    totals = await usage_totals(migrated, since=None, guild_id=GUILD)

    assert totals == UsageTotals(uses=6, refused=1, errors=2, total_seconds=3.0)
    assert totals.average_seconds == 0.5


@pytest.mark.asyncio
async def test_usage_totals_of_an_empty_window_are_zero(migrated: AsyncEngine) -> None:
    await _use(migrated, "greet", hours_ago=48)

    totals = await usage_totals(migrated, since=window_start(NOW, 24), guild_id=GUILD)

    assert totals == UsageTotals()
    assert totals.average_seconds is None


# -- errors_per_hour -------------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_errors_per_hour_puts_each_hours_errors_in_its_bucket_oldest_first(
    migrated: AsyncEngine,
) -> None:
    await _use(migrated, "boom", uses=2, outcome="error", hours_ago=23)
    await _use(migrated, "boom", outcome="error", hours_ago=0)
    await _use(migrated, "greet", outcome="error", kind="text", hours_ago=0)

    counts = await errors_per_hour(migrated, since=window_start(NOW, ERROR_HOURS), guild_id=GUILD)

    assert counts == [2] + [0] * 22 + [2]


@pytest.mark.asyncio
async def test_errors_per_hour_has_a_zero_for_every_hour_without_errors(migrated: AsyncEngine) -> None:
    await _use(migrated, "greet", uses=5, outcome="success")
    await _use(migrated, "greet", uses=5, outcome="refused")

    counts = await errors_per_hour(migrated, since=window_start(NOW, ERROR_HOURS), guild_id=GUILD)

    assert counts == [0] * ERROR_HOURS


@pytest.mark.asyncio
async def test_errors_per_hour_leaves_out_hours_outside_the_window_and_other_guilds(
    migrated: AsyncEngine,
) -> None:
    await _use(migrated, "boom", outcome="error", hours_ago=24)
    await _use(migrated, "boom", outcome="error", hours_ago=-1)  # the next hour: past the window's end
    await _use(migrated, "boom", outcome="error", guild_id=OTHER_GUILD)

    counts = await errors_per_hour(migrated, since=window_start(NOW, ERROR_HOURS), guild_id=GUILD)

    assert counts == [0] * ERROR_HOURS


# -- usage_summary ---------------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_the_summary_has_a_day_a_week_and_all_time_each_with_its_own_top(migrated: AsyncEngine) -> None:
    await _use(migrated, "greet", uses=3)
    await _use(migrated, "rank", uses=2, hours_ago=24 * 3)
    await _use(migrated, "health", uses=1, hours_ago=24 * 30)
    await _use(migrated, "boom", outcome="error")

    summary = await usage_summary(migrated, now=NOW, guild_id=GUILD)

    assert [(window.name, window.top) for window in summary.windows] == [
        ("day", [("greet", 3), ("boom", 1)]),
        ("week", [("greet", 3), ("rank", 2), ("boom", 1)]),
        ("all", [("greet", 3), ("rank", 2), ("boom", 1), ("health", 1)]),
    ]
    assert summary.errors_per_hour == [0] * 23 + [1]
    assert summary.errors_since == window_start(NOW, ERROR_HOURS)
