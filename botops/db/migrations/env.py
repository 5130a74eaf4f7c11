"""Alembic's environment for botops: run the revisions in one transaction over the connection handed in.

:mod:`botops.db.migrate` calls Alembic from inside ``AsyncConnection.run_sync`` and passes the sync
connection as ``config.attributes["connection"]``. Without one (a developer calling
``alembic.command.revision(botops.db.migrate.alembic_config(), autogenerate=True, ...)``), this opens
its own async engine for ``config.attributes["url"]`` or else the ``DATABASE_URL`` of the settings.

Every run is one transaction, on SQLite too (``transactional_ddl``; the engine makes SQLite's driver
honour it), so a revision that fails half-way leaves the schema and ``alembic_version`` as they were.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from typing import Any

from alembic import context
from sqlalchemy import text
from sqlalchemy.engine import Connection

from botops.db.engine import BEGIN_IMMEDIATE, create_engine_for_url
from botops.db.schema import metadata

#: Key of the PostgreSQL advisory lock held while migrating, so shard processes sharing one server
#: that start together migrate one after the other ("botops" in ASCII).
MIGRATION_LOCK_KEY = 0x626F746F7073

config = context.config


def _url() -> str:
    url = config.attributes.get("url")
    if url is None:
        from botops.settings import load_settings  # only when a developer calls Alembic directly

        url = load_settings().database_url.get_secret_value()
    return str(url)


def _run_over(connection: Connection) -> None:
    sqlite = connection.dialect.name == "sqlite"
    if sqlite:
        connection = connection.execution_options(**{BEGIN_IMMEDIATE: True})
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=sqlite,  # SQLite alters most things by copying the table
        compare_type=True,
        transactional_ddl=True,
        transaction_per_migration=False,
    )
    if sqlite:
        with _sqlite_foreign_keys_off(connection), context.begin_transaction():
            context.run_migrations()
            _check_sqlite_foreign_keys(connection)
        return
    with context.begin_transaction():
        if connection.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
        context.run_migrations()


@contextlib.contextmanager
def _sqlite_foreign_keys_off(connection: Connection) -> Iterator[None]:
    """Switch foreign keys off around the migration's transaction, as SQLite's ALTER TABLE guide says.

    A batch operation drops and recreates a table; with foreign keys on, dropping it deletes (or
    fails on) the rows that point at it. The pragma is a no-op inside a transaction, so it goes
    straight to the DBAPI connection, past SQLAlchemy's BEGIN.
    """
    if connection.in_transaction():  # too late to switch; the check before commit still runs
        yield
        return
    raw = connection.connection
    _sqlite_pragma(raw, "foreign_keys = OFF")
    try:
        yield
    finally:
        try:
            _sqlite_pragma(raw, "foreign_keys = ON")
        except Exception:
            # A connection that may still have foreign keys off must not go back to the pool.
            connection.invalidate()


def _sqlite_pragma(raw: Any, pragma: str) -> None:
    cursor = raw.cursor()
    try:
        cursor.execute(f"PRAGMA {pragma}")
    finally:
        cursor.close()


def _check_sqlite_foreign_keys(connection: Connection) -> None:
    """Fail the migration (so it rolls back) if it leaves rows whose foreign keys point nowhere."""
    broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
    if broken:
        tables = sorted({f"{row[0]} -> {row[2]}" for row in broken})
        raise RuntimeError(
            f"the migration leaves {len(broken)} row(s) whose foreign keys point nowhere: {', '.join(tables)}"
        )


async def _run_with_own_engine() -> None:
    engine = create_engine_for_url(_url())
    try:
        async with engine.connect() as connection:
            await connection.run_sync(_run_over)
    finally:
        await engine.dispose()


def _run_offline() -> None:
    url = _url()
    context.configure(
        url=url,
        target_metadata=metadata,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
        render_as_batch=url.startswith("sqlite"),
        transactional_ddl=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def _run() -> None:
    if context.is_offline_mode():
        _run_offline()
        return
    connection = config.attributes.get("connection")
    if connection is None:
        asyncio.run(_run_with_own_engine())
    else:
        _run_over(connection)


_run()
