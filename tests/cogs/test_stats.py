"""The stats extension: the /stats embed in both languages, and the command hook across a reload."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import cast

import pytest
import pytest_asyncio
from sqlalchemy import text

from botops.bot import Bot
from botops.bot.health import HealthReport
from botops.cogs.stats import Stats, render_stats
from botops.db.stats import UsageSummary, UsageTotals, UsageWindow, hour_of
from botops.observability.metrics import CommandUse
from tests.cogs.bots import bot_with_extension

GUILD = 1_000_000_000_000_000_001
AT = datetime(2025, 6, 10, 12, 30, tzinfo=UTC)


def report(*, latency_ms: float | None = 42.0, database_size_bytes: int | None = 3 * 2**20) -> HealthReport:
    return HealthReport(
        database_ok=True,
        database_ms=1.0,
        database_error=None,
        schema_current=True,
        schema_revision="0003",
        latency_ms=latency_ms,
        extensions=["botops.cogs.stats"],
        failed_extensions={},
        uptime_seconds=3723,
        version="1.0",
        commit="abc",
        memory_bytes=50 * 2**20,
        database_size_bytes=database_size_bytes,
    )


def summary(*, guild_id: int | None = GUILD, errors: list[int] | None = None) -> UsageSummary:
    day = UsageWindow("day", AT, [("greet", 3), ("boom", 1)], UsageTotals(uses=4, errors=1))
    week = UsageWindow("week", AT, [("greet", 5), ("boom", 1)], UsageTotals(uses=6, errors=1))
    every = UsageWindow("all", None, [], UsageTotals())
    return UsageSummary(
        guild_id, (day, week, every), errors or [0] * 22 + [2, 1], datetime(2025, 6, 9, 13, tzinfo=UTC)
    )


def fields(language: str) -> dict[str, str]:
    embed = render_stats(summary(), report(), language)
    return {str(field.name): str(field.value) for field in embed.fields}


# -- rendering -----------------------------------------------------------------------------------------


def test_the_embed_lists_each_windows_top_commands_under_its_total_uses() -> None:
    shown = fields("en")

    assert shown["Last 24 hours: 4 uses"] == "**1.** `greet`: 3\n**2.** `boom`: 1"
    assert shown["Last 7 days: 6 uses"] == "**1.** `greet`: 5\n**2.** `boom`: 1"


def test_a_window_without_commands_says_so() -> None:
    assert fields("en")["All time: 0 uses"] == "No commands yet."


def test_the_errors_line_is_a_sparkline_with_the_total_and_its_first_hour_in_utc() -> None:
    shown = fields("en")["Errors per hour, last 24 hours"]

    assert shown == "`" + "▁" * 22 + "█▅` 3 in total, hourly from 2025-06-09 13:00 UTC"


def test_the_embed_shows_uptime_database_size_memory_and_latency() -> None:
    shown = fields("en")

    assert (shown["Uptime"], shown["Database size"], shown["Memory"], shown["Gateway latency"]) == (
        "1:02:03",
        "3.0 MiB",
        "50.0 MiB",
        "42 ms",
    )


def test_the_embed_in_german_has_german_field_names() -> None:
    shown = fields("de")

    assert shown["Letzte 24 Stunden: 4 Aufrufe"] == "**1.** `greet`: 3\n**2.** `boom`: 1"
    assert shown["Insgesamt: 0 Aufrufe"] == "Noch keine Befehle."
    assert shown["Fehler pro Stunde, letzte 24 Stunden"].endswith(
        "3 insgesamt, stündlich ab 2025-06-09 13:00 UTC"
    )
    assert {"Laufzeit", "Datenbankgröße", "Speicher", "Gateway-Latenz"} <= set(shown)


def test_the_whole_bots_statistics_say_they_cover_every_server() -> None:
    embed = render_stats(summary(guild_id=None), report(), "en")

    assert embed.description is not None
    assert embed.description.startswith("Commands used on every server and in direct messages")


def test_a_bot_without_a_gateway_connection_or_database_size_says_so() -> None:
    embed = render_stats(summary(), report(latency_ms=None, database_size_bytes=None), "en")

    shown = {field.name: field.value for field in embed.fields}
    assert (shown["Gateway latency"], shown["Database size"]) == ("not connected", "ERROR")


def test_a_long_command_name_is_shortened_so_ten_lines_fit_in_a_field() -> None:
    long = "x" * 100
    day = UsageWindow("day", AT, [(long, 1)] * 10, UsageTotals(uses=10))
    embed = render_stats(UsageSummary(GUILD, (day,), [0] * 24, AT), report(), "en")

    value = str(embed.fields[0].value)
    assert len(value) <= 1024
    assert "`" + "x" * 39 + "…`" in value


# -- the hook and the writer across a reload -------------------------------------------------------------


@pytest_asyncio.fixture
async def bot(tmp_path: Path) -> AsyncIterator[Bot]:
    async with bot_with_extension(tmp_path, "botops.cogs.stats") as client:
        yield client


def stats_of(bot: Bot) -> Stats:
    cog = bot.get_cog("Stats")
    assert cog is not None
    return cast(Stats, cog)  # a reload makes a new class object, so isinstance cannot tell


async def stored(bot: Bot) -> list[tuple[object, ...]]:
    async with bot.engine.connect() as connection:
        rows = await connection.execute(
            text("SELECT hour, guild_id, command, kind, outcome, uses FROM command_usage ORDER BY command")
        )
        return [tuple(row) for row in rows]


def use(name: str, guild_id: int | None = GUILD) -> CommandUse:
    return CommandUse(name, "slash", "success", guild_id, 0.01, at=AT.timestamp())


@pytest.mark.asyncio
async def test_a_finished_command_is_counted_in_its_hours_row(bot: Bot) -> None:
    bot.record_command(use("greet"))
    bot.record_command(use("greet"))

    await bot.flush_writers()

    assert await stored(bot) == [(hour_of(AT), GUILD, "greet", "slash", "success", 2)]


@pytest.mark.asyncio
async def test_a_command_in_a_direct_message_is_counted_under_guild_zero(bot: Bot) -> None:
    bot.record_command(use("greet", guild_id=None))

    await bot.flush_writers()

    assert await stored(bot) == [(hour_of(AT), 0, "greet", "slash", "success", 1)]


@pytest.mark.asyncio
async def test_a_reload_keeps_one_writer_and_counts_each_command_once(bot: Bot) -> None:
    before = stats_of(bot)
    bot.record_command(use("greet"))

    await bot.reload_extension("botops.cogs.stats")
    bot.record_command(use("rank"))
    await bot.flush_writers()

    assert stats_of(bot).writer is before.writer
    assert bot.writers == [before.writer]
    assert [(row[2], row[5]) for row in await stored(bot)] == [("greet", 1), ("rank", 1)]


@pytest.mark.asyncio
async def test_an_unloaded_extension_counts_nothing(bot: Bot) -> None:
    await bot.unload_extension("botops.cogs.stats")

    bot.record_command(use("greet"))

    assert bot.command_hooks == []
