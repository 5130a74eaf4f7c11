"""Throwaway databases for tests: a SQLite file under ``tmp_path``, or a fresh PostgreSQL database.

PostgreSQL tests run where ``BOTOPS_TEST_POSTGRES_URL`` names a server (any database on it, for
example ``postgresql://postgres@127.0.0.1:5432/test``) and are skipped where it is unset. Each test
gets a database of its own, created for it and dropped after it, so tests never see each other.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy.engine import URL, make_url

POSTGRES_URL_VARIABLE = "BOTOPS_TEST_POSTGRES_URL"
BACKENDS = ("sqlite", "postgresql")


def sqlite_url(folder: Path) -> str:
    """Return the URL of a SQLite file in a subfolder of ``folder`` that does not exist yet."""
    return f"sqlite+aiosqlite:///{folder / 'data' / 'bot.db'}"


def postgres_server() -> URL:
    """Return the server named by ``BOTOPS_TEST_POSTGRES_URL``, or skip the test when it is unset."""
    raw = os.environ.get(POSTGRES_URL_VARIABLE)
    if not raw:
        pytest.skip(f"{POSTGRES_URL_VARIABLE} is not set")
    return make_url(raw).set(drivername="postgresql+asyncpg")


def _dsn(url: URL) -> str:
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


async def create_postgres_database() -> str:
    """Create an empty database on the test server and return its ``postgresql+asyncpg://`` URL."""
    server = postgres_server()
    name = f"botops_test_{secrets.token_hex(6)}"
    connection = await asyncpg.connect(_dsn(server))
    try:
        await connection.execute(f'CREATE DATABASE "{name}"')
    finally:
        await connection.close()
    return server.set(database=name).render_as_string(hide_password=False)


async def drop_postgres_database(url: str) -> None:
    """Drop a database made by :func:`create_postgres_database`, closing what still uses it."""
    name = make_url(url).database
    connection = await asyncpg.connect(_dsn(postgres_server()))
    try:
        await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await connection.close()


@contextlib.asynccontextmanager
async def temporary_database(backend: str, folder: Path) -> AsyncIterator[str]:
    """Yield the URL of an empty database of ``backend``, removed afterwards."""
    if backend == "sqlite":
        yield sqlite_url(folder)
        return
    url = await create_postgres_database()
    try:
        yield url
    finally:
        await drop_postgres_database(url)
