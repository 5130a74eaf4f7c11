"""Queries on ``guild_settings``: the per-guild choices an administrator made (language, features)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from botops.db.schema import guild_settings

__all__ = ["language_of"]


async def language_of(engine: AsyncEngine, guild_id: int) -> str | None:
    """Return the language a guild chose, or ``None`` when it never chose one."""
    query = select(guild_settings.c.language).where(guild_settings.c.guild_id == guild_id)
    async with engine.connect() as connection:
        return (await connection.execute(query)).scalar_one_or_none()
