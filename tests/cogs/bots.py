"""A real, unconnected botops ``Bot`` with one built-in extension loaded, on a migrated SQLite file."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from botops.bot import Bot
from botops.db import migrate
from botops.db.engine import create_engine
from botops.settings import load_settings

__all__ = ["bot_with_extension"]


@contextlib.asynccontextmanager
async def bot_with_extension(folder: Path, extension: str, **settings: Any) -> AsyncIterator[Bot]:
    """Yield a bot on ``folder/bot.db`` with only ``extension`` loaded; close it (unless the test did)."""
    loaded = load_settings(None, database_url=f"sqlite+aiosqlite:///{folder / 'bot.db'}", **settings)
    engine = create_engine(loaded)
    await migrate.upgrade(engine)
    client = Bot(loaded, engine, builtin_extensions=())
    await client.load_extension(extension)
    try:
        yield client
    finally:
        if not client.is_closed():
            await client.close()
        await engine.dispose()
