"""WAL checkpoints off the commit path: commits never checkpoint, the checkpointer keeps the WAL small."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from botops.db.checkpoint import WalCheckpointer, checkpoint_sqlite
from botops.db.engine import SQLITE_PRAGMAS

pytestmark = pytest.mark.asyncio


def _connect(database: Path) -> sqlite3.Connection:
    """A connection with the bot's pragmas, as the engine opens them."""
    connection = sqlite3.connect(database, isolation_level=None)
    for name, value in SQLITE_PRAGMAS:
        connection.execute(f"PRAGMA {name} = {value}")
    return connection


async def _write(connection: sqlite3.Connection, transactions: int) -> None:
    for number in range(transactions):
        connection.execute("BEGIN")
        connection.executemany(
            "INSERT INTO t (v) VALUES (?)", [(f"{number}-{index}" * 20,) for index in range(50)]
        )
        connection.execute("COMMIT")
        await asyncio.sleep(0.002)


def _wal_frames(database: Path) -> int:
    """Frames in the WAL that are not yet in the database file, asked without checkpointing anything."""
    return (database.with_name(database.name + "-wal").stat().st_size - 32) // 4120


async def test_a_commit_never_checkpoints_so_without_the_checkpointer_the_wal_only_grows(
    tmp_path: Path,
) -> None:
    database = tmp_path / "bot.db"
    writer = _connect(database)
    writer.execute("CREATE TABLE t (v TEXT)")

    await _write(writer, 400)

    assert _wal_frames(database) > 1000  # past SQLite's default automatic checkpoint
    writer.close()


async def test_the_checkpointer_keeps_the_wal_at_a_few_moments_of_writes(tmp_path: Path) -> None:
    database = tmp_path / "bot.db"
    writer = _connect(database)
    writer.execute("CREATE TABLE t (v TEXT)")
    checkpointer = WalCheckpointer(database, interval=0.02)
    checkpointer.start()
    try:
        await _write(writer, 400)
    finally:
        await checkpointer.stop()

    assert checkpointer.checkpoints > 5
    assert _wal_frames(database) < 1000
    assert writer.execute("SELECT count(*) FROM t").fetchone() == (400 * 50,)
    writer.close()


async def test_postgresql_and_memory_databases_get_no_checkpointer() -> None:
    async with checkpoint_sqlite("postgresql+asyncpg://u@h/db") as none:
        assert none is None
    async with checkpoint_sqlite("sqlite+aiosqlite:///:memory:") as none:
        assert none is None
