"""The levels extension's XP survives a reload: pending rows, a failed flush and the final flush on close."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import cast

import pytest
import pytest_asyncio
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from botops.bot import Bot
from botops.cogs.levels import Levels
from botops.db.levels import XpDelta
from tests.cogs.bots import bot_with_extension

GUILD, MEMBER = 1_000_000_000_000_000_001, 1_000_000_000_000_000_002


@pytest_asyncio.fixture
async def bot(tmp_path: Path) -> AsyncIterator[Bot]:
    async with bot_with_extension(tmp_path, "botops.cogs.levels", xp_flush_interval=60) as client:
        yield client


def levels_of(bot: Bot) -> Levels:
    cog = bot.get_cog("Levels")
    assert cog is not None
    return cast(Levels, cog)  # a reload makes a new class object, so isinstance cannot tell


async def stored_xp(engine: AsyncEngine) -> list[tuple[int, int, int]]:
    async with engine.connect() as connection:
        rows = await connection.execute(text("SELECT guild_id, user_id, xp FROM member_xp"))
        return [tuple(row) for row in rows]


@pytest.mark.asyncio
async def test_a_reload_keeps_the_writer_and_its_pending_xp(bot: Bot) -> None:
    before = levels_of(bot)
    before.writer.add((GUILD, MEMBER), XpDelta(20, 1, None))

    await bot.reload_extension("botops.cogs.levels")

    after = levels_of(bot)
    assert after is not before
    assert after.writer is before.writer
    assert await stored_xp(bot.engine) == [(GUILD, MEMBER, 20)]


@pytest.mark.asyncio
async def test_xp_a_failed_flush_at_reload_could_not_write_is_written_later(bot: Bot) -> None:
    levels_of(bot).writer.add((GUILD, MEMBER), XpDelta(20, 1, None))
    async with bot.engine.begin() as connection:
        await connection.execute(text("ALTER TABLE member_xp RENAME TO member_xp_away"))

    await bot.reload_extension("botops.cogs.levels")  # its flush fails: the table is gone

    assert levels_of(bot).writer.pending == 1
    async with bot.engine.begin() as connection:
        await connection.execute(text("ALTER TABLE member_xp_away RENAME TO member_xp"))
    assert await bot.flush_writers() == 1
    assert await stored_xp(bot.engine) == [(GUILD, MEMBER, 20)]


@pytest.mark.asyncio
async def test_closing_the_bot_makes_the_final_flush(bot: Bot) -> None:
    levels_of(bot).writer.add((GUILD, MEMBER), XpDelta(7, 1, None))
    levels_of(bot).writer.add((GUILD, MEMBER), XpDelta(8, 1, None))

    await bot.close()

    assert await stored_xp(bot.engine) == [(GUILD, MEMBER, 15)]
    assert bot.writers == []
