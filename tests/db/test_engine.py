"""The engine: SQLite's pragmas on every connection, transactional DDL, reachability, masked URLs."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import inspect, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from botops.db.engine import (
    create_engine,
    create_engine_for_url,
    database_reachable,
    masked_url,
    ping,
)
from botops.errors import DatabaseUnavailable
from botops.settings import load_settings
from tests.db.databases import sqlite_url

# Port 1 refuses at once: a server that is down, without waiting for a timeout.
UNREACHABLE = "postgresql+asyncpg://botops:{password}@127.0.0.1:1/botops"


async def _pragmas(connection: AsyncConnection) -> dict[str, object]:
    names = ("journal_mode", "synchronous", "busy_timeout", "foreign_keys")
    return {name: (await connection.execute(text(f"PRAGMA {name}"))).scalar() for name in names}


async def _tables(engine: AsyncEngine) -> set[str]:
    async with engine.connect() as connection:
        return set(await connection.run_sync(lambda c: inspect(c).get_table_names()))


async def _create_a_table_then_fail(engine: AsyncEngine) -> None:
    async with engine.begin() as connection:
        await connection.execute(text("CREATE TABLE abandoned (id INTEGER PRIMARY KEY)"))
        raise RuntimeError("abandon the transaction")


@pytest.mark.asyncio
async def test_sqlite_pragmas_are_set_on_every_connection(tmp_path: Path) -> None:
    engine = create_engine_for_url(sqlite_url(tmp_path))
    try:
        async with engine.connect() as first, engine.connect() as second:
            seen = [await _pragmas(first), await _pragmas(second)]
    finally:
        await engine.dispose()

    expected = {"journal_mode": "wal", "synchronous": 1, "busy_timeout": 5000, "foreign_keys": 1}
    assert seen == [expected, expected]


@pytest.mark.asyncio
async def test_sqlite_engine_creates_the_folder_of_its_file(tmp_path: Path) -> None:
    engine = create_engine_for_url(f"sqlite+aiosqlite:///{tmp_path / 'a' / 'b' / 'bot.db'}")
    try:
        await ping(engine)
    finally:
        await engine.dispose()

    assert (tmp_path / "a" / "b" / "bot.db").is_file()


def test_sqlite_folder_that_cannot_be_created_names_database_url(tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("not a folder")

    with pytest.raises(DatabaseUnavailable, match="DATABASE_URL=sqlite") as caught:
        create_engine_for_url(f"sqlite+aiosqlite:///{tmp_path / 'a-file' / 'bot.db'}")

    assert "cannot create the folder" in caught.value.reason


@pytest.mark.asyncio
async def test_ddl_is_rolled_back_with_its_transaction(engine: AsyncEngine) -> None:
    with pytest.raises(RuntimeError, match="abandon"):
        await _create_a_table_then_fail(engine)

    assert "abandoned" not in await _tables(engine)


@pytest.mark.asyncio
async def test_sqlite_ddl_after_an_autocommit_connection_is_still_transactional(tmp_path: Path) -> None:
    engine = create_engine_for_url(sqlite_url(tmp_path))
    try:
        async with engine.connect() as connection:
            await connection.execution_options(isolation_level="AUTOCOMMIT")
            await connection.execute(text("SELECT 1"))
        with pytest.raises(RuntimeError, match="abandon"):
            await _create_a_table_then_fail(engine)  # on the same pooled connection again
        tables = await _tables(engine)
    finally:
        await engine.dispose()

    assert "abandoned" not in tables


@pytest.mark.asyncio
async def test_foreign_keys_are_enforced(engine: AsyncEngine) -> None:
    async with engine.begin() as connection:
        await connection.execute(text("CREATE TABLE parent (id INTEGER PRIMARY KEY)"))
        await connection.execute(
            text("CREATE TABLE child (id INTEGER PRIMARY KEY, parent_id INTEGER REFERENCES parent (id))")
        )

    with pytest.raises(IntegrityError):
        async with engine.begin() as connection:
            await connection.execute(text("INSERT INTO child (id, parent_id) VALUES (1, 42)"))


@pytest.mark.asyncio
async def test_ping_returns_the_round_trip_in_milliseconds(engine: AsyncEngine) -> None:
    elapsed = await ping(engine)

    assert isinstance(elapsed, float)
    assert elapsed >= 0


@pytest.mark.asyncio
async def test_database_reachable_is_true_for_a_working_database(engine: AsyncEngine) -> None:
    assert await database_reachable(engine) is True


@pytest.mark.asyncio
async def test_database_reachable_is_false_when_the_server_refuses() -> None:
    engine = create_engine_for_url(UNREACHABLE.format(password="pw"))
    try:
        assert await database_reachable(engine) is False
    finally:
        await engine.dispose()


@pytest.mark.asyncio
async def test_unreachable_database_is_named_with_its_password_masked() -> None:
    password = "hunter2-" + "x" * 8
    engine = create_engine_for_url(UNREACHABLE.format(password=password))
    try:
        with pytest.raises(DatabaseUnavailable) as caught:
            await ping(engine)
    finally:
        await engine.dispose()

    message = str(caught.value)
    assert "DATABASE_URL=postgresql+asyncpg://botops:***@127.0.0.1:1/botops" in message
    assert "ConnectionRefusedError" in message
    assert password not in message


def test_a_url_whose_port_is_not_a_number_is_unavailable_with_its_password_masked() -> None:
    with pytest.raises(DatabaseUnavailable) as caught:
        create_engine_for_url("postgresql+asyncpg://botops:hunter2-xyz@db:notaport/botops")

    assert "cannot be parsed" in str(caught.value)
    assert "hunter2-xyz" not in str(caught.value)


def test_masked_url_hides_a_password_with_a_raw_slash() -> None:
    shown = masked_url("postgresql+asyncpg://botops:pa/ss%40x@db/botops")

    assert shown == "postgresql+asyncpg://botops:***@db/botops"


def test_masked_url_hides_a_password_given_as_a_query_parameter() -> None:
    shown = masked_url("postgresql+asyncpg://botops@db/botops?password=hunter2&ssl=require")

    assert "hunter2" not in shown
    assert "ssl=require" in shown


def test_masked_url_leaves_a_sqlite_path_as_it_is() -> None:
    assert masked_url("sqlite+aiosqlite:///data/bot.db") == "sqlite+aiosqlite:///data/bot.db"


@pytest.mark.asyncio
async def test_create_engine_uses_the_database_url_of_the_settings(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path)
    engine = create_engine(load_settings(None, database_url=url))
    try:
        assert masked_url(engine.url) == url
    finally:
        await engine.dispose()
