"""Migrated SQLite databases with rows in them, and settings pointing at them, for the backup tests."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

from botops.db import migrate
from botops.db.engine import create_engine_for_url
from botops.settings import Settings, load_settings


def sqlite_url(database: Path) -> str:
    """Return the ``sqlite+aiosqlite://`` URL of the file ``database``."""
    return f"sqlite+aiosqlite:///{database}"


def make_database(database: Path, *, members: int = 200) -> Path:
    """Create a SQLite database at ``database`` migrated to the head, with ``members`` rows of XP."""

    async def upgrade() -> None:
        engine = create_engine_for_url(sqlite_url(database))
        try:
            await migrate.upgrade(engine)
        finally:
            await engine.dispose()

    asyncio.run(upgrade())
    add_members(database, range(members))
    return database


def add_members(database: Path, user_ids: range) -> None:
    """Insert one member_xp row per user id (guild 1), in one transaction."""
    connection = sqlite3.connect(database)
    try:
        with connection:
            connection.executemany(
                "INSERT INTO member_xp (guild_id, user_id, xp, messages) VALUES (1, ?, ?, 1)",
                [(user_id, user_id * 10) for user_id in user_ids],
            )
    finally:
        connection.close()


def dump(database: Path) -> list[str]:
    """Return the database's content as SQL statements, for comparing two databases."""
    connection = sqlite3.connect(database)
    try:
        return list(connection.iterdump())
    finally:
        connection.close()


def settings_for(database: Path, backup_dir: Path, **overrides: object) -> Settings:
    """Return settings for ``database`` and ``backup_dir``, without the HTTP server unless told."""
    values: dict[str, object] = {
        "database_url": sqlite_url(database),
        "backup_dir": backup_dir,
        "http_enabled": False,
    }
    values.update(overrides)
    return load_settings(None, **values)
